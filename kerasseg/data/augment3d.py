"""In-graph 3-D data augmentation for volumetric training (TensorFlow ops, stateless random).

The transforms follow nnU-Net's 3-D training augmentation (its spatial transform, then
mirroring, intensity transforms and low-resolution simulation), applied to a batch of
patches ``(B, D, H, W, C)`` and their labels ``(B, D, H, W)`` inside the ``tf.data`` graph:

* **rotation, scaling and elastic deformation** share one sampling grid per example: the
  output voxel at ``p`` reads the input at ``R (p - c) / s + c + u(p)``, ``c`` the patch
  centre, ``R`` rotations about the allowed axes (``rotate_axes``; e.g. ``[0]`` rotates in
  the height-width plane only, for anisotropic data), ``s`` the zoom and ``u`` a smoothed
  random displacement field (Gaussian ``elastic_sigma`` voxels, largest displacement
  ``elastic_alpha`` voxels). Images are sampled trilinearly, labels with nearest neighbour
  (a label never holds an interpolated value); samples outside the patch read 0 (image)
  and background (label);
* **mirroring** of each axis in ``mirror_axes`` with probability ``mirror_prob`` (leave out
  an axis along which classes depend on the side, e.g. left and right structures);
* **intensity**, relative to each example's statistics as in
  :mod:`kerasseg.data.augment`: brightness adds ``U(-b, b) * std``, contrast scales the
  deviation from the mean by ``U(1 - c, 1 + c)``, gamma maps ``[min, max]`` to [0, 1],
  raises it to ``U(gamma)`` and maps back, noise adds ``N(0, (U(0, s) * std)^2)``;
* **low resolution**: the image is resized to ``U(lowres_zoom)`` of its size (nearest) and
  back (trilinear), as a scan of coarser resolution would look.

Each example draws its own parameters from the seed, so the same seed gives the same batch.
"""

import math

import numpy as np

__all__ = ["PRESETS_3D", "AUGMENT_PRESETS_3D", "get_augmentation_3d", "mirrored_axes",
           "tf_augment_3d"]

_OFF = {
    "mirror_prob": 0.0,  # probability of mirroring each axis in mirror_axes
    "mirror_axes": (0, 1, 2),  # array axes of (D, H, W) that may be mirrored
    "rotate_prob": 0.0,
    "rotate": 0.0,  # rotation range, +/- degrees, about each axis in rotate_axes
    "rotate_axes": (0, 1, 2),  # axes rotated about (0: rotation in the H-W plane)
    "scale_prob": 0.0,
    "scale": (1.0, 1.0),  # zoom range
    "elastic_prob": 0.0,
    "elastic_alpha": 0.0,  # largest displacement, voxels
    "elastic_sigma": 4.0,  # smoothing of the displacement field, voxels
    "brightness_prob": 0.0,
    "brightness": 0.0,  # shift range, +/- image standard deviations
    "contrast_prob": 0.0,
    "contrast": 0.0,  # factor range 1 +/- contrast
    "gamma_prob": 0.0,
    "gamma": (1.0, 1.0),
    "noise_prob": 0.0,
    "noise_std": 0.0,  # largest noise std, in image standard deviations
    "lowres_prob": 0.0,
    "lowres_zoom": (1.0, 1.0),  # resolution range, fraction of the patch size
}

_AXES = ("mirror_axes", "rotate_axes")
_RANGES = ("scale", "gamma", "lowres_zoom")

PRESETS_3D = {
    "none": dict(_OFF),
    "light": dict(_OFF, mirror_prob=0.5, rotate_prob=0.2, rotate=15.0, scale_prob=0.2,
                  scale=(0.9, 1.1), brightness_prob=0.15, brightness=0.1, contrast_prob=0.15,
                  contrast=0.1, gamma_prob=0.15, gamma=(0.8, 1.25)),
    # nnU-Net's 3-D defaults: rotation +/-30 degrees and zoom 0.7-1.4 (each p 0.2),
    # mirroring, brightness and contrast (p 0.15), gamma 0.7-1.5 (p 0.3), noise (p 0.1),
    # low resolution 0.5-1 (p 0.25); no elastic deformation.
    "default": dict(_OFF, mirror_prob=0.5, rotate_prob=0.2, rotate=30.0, scale_prob=0.2,
                    scale=(0.7, 1.4), brightness_prob=0.15, brightness=0.25,
                    contrast_prob=0.15, contrast=0.25, gamma_prob=0.3, gamma=(0.7, 1.5),
                    noise_prob=0.1, noise_std=0.1, lowres_prob=0.25, lowres_zoom=(0.5, 1.0)),
    "strong": dict(_OFF, mirror_prob=0.5, rotate_prob=0.3, rotate=45.0, scale_prob=0.3,
                   scale=(0.65, 1.5), elastic_prob=0.2, elastic_alpha=3.0, elastic_sigma=4.0,
                   brightness_prob=0.2, brightness=0.3, contrast_prob=0.2, contrast=0.3,
                   gamma_prob=0.3, gamma=(0.7, 1.5), noise_prob=0.15, noise_std=0.15,
                   lowres_prob=0.3, lowres_zoom=(0.5, 1.0)),
}
AUGMENT_PRESETS_3D = tuple(PRESETS_3D)


def _fail(message):
    raise ValueError(message)


def _copy(params):
    copied = {}
    for key, value in params.items():
        if key in _AXES:
            if not isinstance(value, (tuple, list)) or any(
                    isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
                _fail(f"`{key}` must be a list of volume axes (0, 1, 2). Received: {key}={value!r}")
            axes = tuple(int(v) for v in value)
            if len(set(axes)) != len(axes) or any(a not in (0, 1, 2) for a in axes):
                _fail(f"`{key}` must list distinct axes among 0, 1 and 2 (depth, height, "
                      f"width), or be empty. Received: {key}={list(value)}")
            copied[key] = axes
        elif key in _RANGES:
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                _fail(f"`{key}` must be a range (low, high). Received: {key}={value!r}")
            low, high = (float(v) for v in value)
            if not 0 < low <= high:
                _fail(f"`{key}` must be a range (low, high) with 0 < low <= high. "
                      f"Received: {key}={list(value)}")
            if key == "lowres_zoom" and high > 1:
                _fail(f"`lowres_zoom` must lie in (0, 1]. Received: lowres_zoom={list(value)}")
            copied[key] = (low, high)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                _fail(f"`{key}` must be a number. Received: {key}={value!r}")
            value = float(value)
            if key.endswith("_prob") and not 0.0 <= value <= 1.0:
                _fail(f"`{key}` must be in [0, 1]. Received: {key}={value}")
            if not key.endswith("_prob") and value < 0:
                _fail(f"`{key}` must be >= 0. Received: {key}={value}")
            copied[key] = value
    if copied.get("elastic_sigma", 1.0) <= 0:
        _fail(f"`elastic_sigma` must be > 0. Received: elastic_sigma={copied['elastic_sigma']}")
    return copied


def get_augmentation_3d(augment):
    """Resolve a 3-D augmentation preset name or parameter dict into a full parameter dict.

    Args:
        augment: one of :data:`AUGMENT_PRESETS_3D` (``"none"``, ``"light"``, ``"default"``,
            ``"strong"``), ``None`` (same as ``"none"``), or a dict of parameters (the keys
            of ``PRESETS_3D["none"]``; missing ones are off), optionally with a ``"preset"``
            key naming the preset the other keys override.

    Returns:
        A new dict with every parameter (JSON-able: numbers and tuples).

    Raises:
        ValueError: naming an unknown preset or parameter, or an invalid value
            (probabilities outside [0, 1], axes outside 0..2 or repeated, bad ranges).

    Example:
        >>> get_augmentation_3d("default")["rotate"]
        30.0
        >>> get_augmentation_3d({"preset": "default", "mirror_axes": [2]})["mirror_axes"]
        (2,)
    """
    if augment is None:
        augment = "none"
    if isinstance(augment, str):
        if augment not in PRESETS_3D:
            _fail(f"`augment` must be one of {list(AUGMENT_PRESETS_3D)} (3-D presets) or a "
                  f"dict of parameters. Received: augment={augment!r}")
        return _copy(PRESETS_3D[augment])
    if not isinstance(augment, dict):
        _fail(f"`augment` must be one of {list(AUGMENT_PRESETS_3D)} (3-D presets) or a dict "
              f"of parameters. Received: augment={augment!r}")
    overrides = dict(augment)
    base = get_augmentation_3d(overrides.pop("preset", "none"))
    unknown = sorted(set(overrides) - set(_OFF))
    if unknown:
        _fail(f"3-D `augment` parameters must be among {sorted(_OFF)}. Received unknown: "
              f"{unknown}")
    base.update(overrides)
    return _copy(base)


def mirrored_axes(params):
    """Return the volume axes that augmentation ``params`` mirror (empty when mirroring is off).

    Args:
        params: a preset name or parameter dict, as for :func:`get_augmentation_3d`.

    Returns:
        A sorted list of axes of ``(D, H, W)``.

    Raises:
        ValueError: as :func:`get_augmentation_3d`.

    Example:
        >>> mirrored_axes({"preset": "light", "mirror_axes": [2, 1]}), mirrored_axes("none")
        ([1, 2], [])
    """
    params = get_augmentation_3d(params)
    return sorted(params["mirror_axes"]) if params["mirror_prob"] > 0 else []


# ----------------------------------------------------------------------- TF pieces


def _as_seed(seed):
    import tensorflow as tf

    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    return seed


def rotation_matrices(angles_zyx):
    """Rotation matrices acting on ``(z, y, x)`` coordinates from angles about each axis.

    Args:
        angles_zyx: float tensor ``(B, 3)``: radians about axis 0 (a rotation in the
            y-x plane), axis 1 (in z-x) and axis 2 (in z-y), applied in that order.

    Returns:
        float32 ``(B, 3, 3)``.

    Example:
        >>> import tensorflow as tf
        >>> m = rotation_matrices(tf.constant([[math.pi / 2, 0.0, 0.0]]))
        >>> np.round(m.numpy()[0], 6).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    """
    import tensorflow as tf

    angles = tf.cast(angles_zyx, tf.float32)
    one, zero = tf.ones_like(angles[:, 0]), tf.zeros_like(angles[:, 0])

    def rot(a, i, j):  # rotation in the plane of coordinates i and j
        c, s = tf.cos(a), tf.sin(a)
        rows = [[one, zero, zero], [zero, one, zero], [zero, zero, one]]
        rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
        return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)

    return rot(angles[:, 2], 0, 1) @ rot(angles[:, 1], 0, 2) @ rot(angles[:, 0], 1, 2)


def _smooth(field, sigma):
    """Separable Gaussian smoothing of ``(B, D, H, W, K)`` along D, H and W ('SAME', zeros)."""
    import tensorflow as tf

    radius = max(1, int(round(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel = tf.constant(kernel / kernel.sum())
    channels = field.shape[-1]
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[axis] = 2 * radius + 1
        k = tf.reshape(kernel, shape[:3] + [1, 1])
        # conv3d per channel: fold channels into the batch
        b = tf.shape(field)[0]
        moved = tf.transpose(field, [0, 4, 1, 2, 3])
        flat = tf.reshape(moved, tf.concat([[-1], tf.shape(field)[1:4], [1]], 0))
        flat = tf.nn.conv3d(flat, k, [1, 1, 1, 1, 1], "SAME")
        field = tf.transpose(tf.reshape(flat, tf.concat([[b, channels], tf.shape(field)[1:4]], 0)),
                             [0, 2, 3, 4, 1])
    return field


def resample(images, labels, coords):
    """Sample ``images`` trilinearly and ``labels`` by nearest neighbour at ``coords``.

    Args:
        images: float32 ``(B, D, H, W, C)``.
        labels: integer ``(B, D, H, W)``.
        coords: float32 ``(B, D, H, W, 3)``: for each output voxel the ``(z, y, x)``
            position in the input it reads; outside the input, images read 0 and labels 0.

    Returns:
        ``(images, labels)`` of the input shapes and dtypes.

    Example:
        >>> import tensorflow as tf
        >>> x = tf.reshape(tf.range(8, dtype=tf.float32), (1, 2, 2, 2, 1))
        >>> grid = tf.cast(tf.stack(tf.meshgrid(*[tf.range(2)] * 3, indexing="ij"), -1), tf.float32)
        >>> out, _ = resample(x, tf.zeros((1, 2, 2, 2), tf.int32), (grid + 0.5)[None])
        >>> float(out[0, 0, 0, 0, 0])          # the mean of the eight voxels
        3.5
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch = shape[0]
    sizes = [shape[1], shape[2], shape[3]]
    b = tf.broadcast_to(tf.reshape(tf.range(batch), [-1, 1, 1, 1]), tf.shape(coords)[:4])
    low = tf.floor(coords)
    frac = coords - low
    low = tf.cast(low, tf.int32)
    out = 0.0
    for corner in range(8):
        offset = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1]
        index = [low[..., i] + offset[i] for i in range(3)]
        inside = tf.ones_like(index[0], tf.bool)
        weight = 1.0
        for i in range(3):
            inside &= (index[i] >= 0) & (index[i] < sizes[i])
            weight *= frac[..., i] if offset[i] else 1.0 - frac[..., i]
        clipped = [tf.clip_by_value(index[i], 0, sizes[i] - 1) for i in range(3)]
        values = tf.gather_nd(images, tf.stack([b] + clipped, axis=-1))
        out += values * (weight * tf.cast(inside, tf.float32))[..., None]
    nearest = tf.cast(tf.round(coords), tf.int32)
    inside = tf.ones_like(nearest[..., 0], tf.bool)
    for i in range(3):
        inside &= (nearest[..., i] >= 0) & (nearest[..., i] < sizes[i])
    clipped = [tf.clip_by_value(nearest[..., i], 0, sizes[i] - 1) for i in range(3)]
    picked = tf.gather_nd(labels, tf.stack([b] + clipped, axis=-1))
    picked = tf.where(inside, picked, tf.zeros_like(picked))
    return tf.ensure_shape(out, images.shape), tf.ensure_shape(picked, labels.shape)


def _resize3d(volume, size, method):
    """Resize ``(D, H, W, C)`` to ``size`` (3 ints) with ``tf.image.resize``, axis by axis."""
    import tensorflow as tf

    x = tf.image.resize(volume, size[1:], method=method)  # H, W (D as batch)
    x = tf.transpose(x, [1, 0, 2, 3])  # (H', D, W', C)
    x = tf.image.resize(x, tf.stack([size[0], size[2]]), method=method)
    return tf.transpose(x, [1, 0, 2, 3])


def tf_augment_3d(images, labels, seed, augment="default"):
    """Augment a batch of 3-D patches in TensorFlow ops, reproducibly from a seed.

    See the module docstring for the transforms. Each example draws its own parameters;
    the spatial resampling, the elastic field and the low-resolution simulation run only
    when some example of the batch drew them.

    Args:
        images: float ``(B, D, H, W, C)``.
        labels: integer ``(B, D, H, W)``.
        seed: an int or int tensor (scalar or shape ``[2]``).
        augment: preset name or parameter dict (:func:`get_augmentation_3d`).

    Returns:
        ``(images, labels)``: float32 images and labels of the input shapes and dtype.

    Raises:
        ValueError: for invalid ``augment`` parameters or ranks.

    Example:
        >>> import tensorflow as tf
        >>> x, y = tf_augment_3d(tf.zeros((2, 8, 8, 8, 1)), tf.zeros((2, 8, 8, 8), tf.int32), 7)
        >>> tuple(x.shape), tuple(y.shape)
        ((2, 8, 8, 8, 1), (2, 8, 8, 8))
    """
    import tensorflow as tf

    p = get_augmentation_3d(augment)
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    labels = tf.convert_to_tensor(labels)
    if images.shape.rank != 5 or labels.shape.rank != 4:
        raise ValueError("`images` must be (B, D, H, W, C) and `labels` (B, D, H, W). Received: "
                         f"images with shape {images.shape}, labels with shape {labels.shape}")
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=24)
    shape = tf.shape(images)
    batch = shape[0]

    def uniform(i, low=0.0, high=1.0, n=None):
        size = [batch] if n is None else [batch, n]
        return tf.random.stateless_uniform(size, seed=seeds[i], minval=low, maxval=high)

    def chance(i, prob):
        return uniform(i) < prob

    # ---- rotation, zoom and elastic deformation: one grid
    if p["rotate_prob"] > 0 or p["scale_prob"] > 0 or p["elastic_prob"] > 0:
        rotate = chance(0, p["rotate_prob"])
        limit = p["rotate"] * math.pi / 180.0
        allowed = tf.constant([1.0 if a in p["rotate_axes"] else 0.0 for a in range(3)])
        angles = uniform(1, -limit, limit, 3) * allowed * tf.cast(rotate, tf.float32)[:, None]
        zoom = tf.where(chance(2, p["scale_prob"]), uniform(3, *p["scale"]), 1.0)
        elastic = chance(4, p["elastic_prob"])
        spatial = (rotate | (zoom != 1.0) | elastic)

        def warp():
            sizes = tf.cast(shape[1:4], tf.float32)
            grid = tf.stack(tf.meshgrid(tf.range(sizes[0]), tf.range(sizes[1]),
                                        tf.range(sizes[2]), indexing="ij"), axis=-1)
            centre = (sizes - 1.0) / 2.0
            matrix = rotation_matrices(angles) / zoom[:, None, None]
            coords = tf.einsum("bij,dhwj->bdhwi", matrix, grid - centre) + centre
            if p["elastic_prob"] > 0 and p["elastic_alpha"] > 0:
                noise = tf.random.stateless_normal(tf.concat([shape[:4], [3]], 0), seed=seeds[5])
                field = _smooth(noise, p["elastic_sigma"])
                largest = tf.reduce_max(tf.abs(field), axis=[1, 2, 3, 4], keepdims=True)
                field = field / tf.maximum(largest, 1e-6) * p["elastic_alpha"]
                coords += field * tf.cast(elastic, tf.float32)[:, None, None, None, None]
            warped, moved = resample(images, labels, coords)
            keep = spatial[:, None, None, None]
            return (tf.where(keep[..., None], warped, images), tf.where(keep, moved, labels))

        images, labels = tf.cond(tf.reduce_any(spatial), warp, lambda: (images, labels))

    # ---- mirroring
    if p["mirror_prob"] > 0:
        for k, axis in enumerate(p["mirror_axes"]):
            flip = chance(6 + k, p["mirror_prob"])
            images = tf.where(flip[:, None, None, None, None],
                              tf.reverse(images, [axis + 1]), images)
            labels = tf.where(flip[:, None, None, None], tf.reverse(labels, [axis + 1]), labels)

    # ---- intensity, relative to each example's statistics
    def moments(x):
        mean, var = tf.nn.moments(x, axes=[1, 2, 3, 4], keepdims=True)
        return mean, tf.sqrt(var)

    def per_example(values):
        return values[:, None, None, None, None]

    if p["brightness_prob"] > 0:
        shift = uniform(9, -p["brightness"], p["brightness"])
        shift = tf.where(chance(10, p["brightness_prob"]), shift, 0.0)
        images = images + per_example(shift) * moments(images)[1]
    if p["contrast_prob"] > 0:
        factor = uniform(11, 1 - p["contrast"], 1 + p["contrast"])
        factor = tf.where(chance(12, p["contrast_prob"]), factor, 1.0)
        mean = moments(images)[0]
        images = mean + (images - mean) * per_example(factor)
    if p["gamma_prob"] > 0:
        gamma = tf.where(chance(13, p["gamma_prob"]), uniform(14, *p["gamma"]), 1.0)
        low = tf.reduce_min(images, axis=[1, 2, 3, 4], keepdims=True)
        span = tf.maximum(tf.reduce_max(images, axis=[1, 2, 3, 4], keepdims=True) - low, 1e-8)
        adjusted = tf.pow(tf.clip_by_value((images - low) / span, 0.0, 1.0),
                          per_example(gamma)) * span + low
        images = tf.where(per_example(gamma != 1.0), adjusted, images)
    if p["noise_prob"] > 0:
        sigma = tf.where(chance(15, p["noise_prob"]), uniform(16, 0.0, p["noise_std"]), 0.0)
        noise = tf.random.stateless_normal(tf.shape(images), seed=seeds[17])
        images = images + noise * per_example(sigma) * moments(images)[1]

    # ---- low resolution
    if p["lowres_prob"] > 0:
        use = chance(18, p["lowres_prob"])
        zoom = uniform(19, *p["lowres_zoom"])

        def degrade(args):
            volume, z, on = args
            full = tf.shape(volume)[:3]
            small = tf.maximum(tf.cast(tf.round(tf.cast(full, tf.float32) * z), tf.int32), 1)
            coarse = _resize3d(volume, small, "nearest")
            back = _resize3d(coarse, full, "bilinear")
            return tf.where(on, tf.ensure_shape(back, volume.shape), volume)

        images = tf.cond(
            tf.reduce_any(use),
            lambda: tf.map_fn(degrade, (images, zoom, use),
                              fn_output_signature=tf.TensorSpec(images.shape[1:], tf.float32)),
            lambda: images)
    return images, labels
