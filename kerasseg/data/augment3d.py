"""In-graph 3-D data augmentation for volumetric segmentation (TensorFlow ops, stateless random).

:func:`tf_augment_3d` augments a batch of volumes ``(B, D, H, W, C)`` and their label maps
``(B, D, H, W)`` inside the ``tf.data`` graph, with the transforms nnU-Net's 3-D training
uses (batchgenerators), in this order:

1. **Spatial**: rotation (about the axes in ``rotate_axes``, each angle ``U(-rotate,
   rotate)`` degrees), isotropic scaling (zoom factor ``U(scale)``, > 1 enlarges) and
   elastic deformation, all about the volume's centre and combined into ONE sampling grid
   per example, so a volume is resampled once. Images are resampled trilinearly, labels
   with nearest neighbour (a label never holds an interpolated value). Samples outside the
   volume read 0 for images (the mean of a z-scored image; nnU-Net's constant border) and
   0 (background) for labels.
2. **Gaussian noise**: adds ``N(0, (U(0, noise_std) * std)^2)``.
3. **Brightness**: adds ``U(-brightness, brightness) * std``.
4. **Contrast**: scales the deviation from the mean by ``U(1 - contrast, 1 + contrast)``.
5. **Low resolution** (image only): downsamples by a zoom factor ``U(lowres_zoom)`` per
   example (every axis, nearest neighbour) and upsamples back trilinearly.
6. **Gamma**: maps ``[min, max]`` to [0, 1], raises it to ``U(gamma)``, maps back.
7. **Mirroring**: each axis in ``mirror_axes`` flipped with probability ``mirror_prob``.

Each transform fires per example with its ``*_prob``. Intensity transforms are relative to
each example's statistics per channel (``std``, mean, min and max over the volume), as in
:mod:`kerasseg.data.augment`, so they behave alike on z-scored, [0, 1] or raw intensities;
labels are never touched by them.

Elastic deformation: the displacement field (in voxels, one component per axis) is standard
normal noise smoothed by a Gaussian of ``elastic_sigma`` voxels (border replicated, as the
2-D module), then scaled so that its largest displacement is ``elastic_alpha`` voxels.
Unlike the 2-D module (albumentations' convention, whose ``alpha`` is scaled down by the
smoothing, more so in 3-D), ``elastic_alpha`` is thus a length in voxels.

Axes are array axes of ``(D, H, W)``: 0, 1, 2. Rotating about axis 0 turns the H-W plane
(the only rotation that suits anisotropic data with thick D slices: ``rotate_axes=[0]``);
a positive angle about axis ``a`` turns axis ``(a + 1) % 3`` towards ``(a + 2) % 3``, as
``np.rot90`` with ``axes=((a + 1) % 3, (a + 2) % 3)``.
"""

import math

import numpy as np

from kerasseg.data.augment import _as_seed, _gaussian_kernel, _update_selected

__all__ = ["PRESETS_3D", "AUGMENT_PRESETS_3D", "get_augmentation_3d", "mirrored_axes", "tf_augment_3d"]

_OFF = {
    "mirror_prob": 0.0,  # probability of each mirroring along an axis of mirror_axes
    # Axes of (D, H, W) that may be mirrored. Leave out an axis along which the classes
    # depend on the side (e.g. left and right organs as separate classes).
    "mirror_axes": (0, 1, 2),
    "rotate_prob": 0.0,
    "rotate": 0.0,  # largest angle about each axis, degrees
    "rotate_axes": (0, 1, 2),  # axes rotated about; [0] turns only the H-W plane
    "scale_prob": 0.0,
    "scale": (1.0, 1.0),  # zoom factor range (> 1 enlarges), one factor for all axes
    "elastic_prob": 0.0,
    "elastic_alpha": 0.0,  # largest displacement, voxels
    "elastic_sigma": 1.0,  # smoothing of the displacement noise, voxels
    "brightness_prob": 0.0,
    "brightness": 0.0,  # shift range, +/- image standard deviations
    "contrast_prob": 0.0,
    "contrast": 0.0,  # contrast factor range 1 +/- contrast
    "gamma_prob": 0.0,
    "gamma": (1.0, 1.0),
    "noise_prob": 0.0,
    "noise_std": 0.0,  # largest noise std, in image standard deviations
    "lowres_prob": 0.0,
    "lowres_zoom": (1.0, 1.0),  # downsampling factor range, in (0, 1]
}

PRESETS_3D = {
    "none": dict(_OFF),
    "light": dict(
        _OFF,
        mirror_prob=0.5,
        rotate_prob=0.2, rotate=10.0,
        scale_prob=0.2, scale=(0.9, 1.1),
        brightness_prob=0.15, brightness=0.1,
        contrast_prob=0.15, contrast=0.1,
        gamma_prob=0.15, gamma=(0.8, 1.25),
    ),
    # nnU-Net v2's 3-D augmentation: rotation +/-30 degrees and zoom 0.7-1.4 (each p 0.2),
    # intensity, low resolution and mirroring; elastic deformation off, as in nnU-Net v2
    # (its size is set, so {"preset": "default", "elastic_prob": 0.2} turns it on).
    "default": dict(
        _OFF,
        mirror_prob=0.5,
        rotate_prob=0.2, rotate=30.0,
        scale_prob=0.2, scale=(0.7, 1.4),
        elastic_prob=0.0, elastic_alpha=4.0, elastic_sigma=6.0,
        brightness_prob=0.15, brightness=0.2,
        contrast_prob=0.15, contrast=0.25,
        gamma_prob=0.3, gamma=(0.7, 1.5),
        noise_prob=0.1, noise_std=0.3,
        lowres_prob=0.25, lowres_zoom=(0.5, 1.0),
    ),
    "strong": dict(
        _OFF,
        mirror_prob=0.5,
        rotate_prob=0.3, rotate=30.0,
        scale_prob=0.3, scale=(0.7, 1.4),
        elastic_prob=0.2, elastic_alpha=6.0, elastic_sigma=6.0,
        brightness_prob=0.3, brightness=0.3,
        contrast_prob=0.3, contrast=0.35,
        gamma_prob=0.3, gamma=(0.6, 1.7),
        noise_prob=0.2, noise_std=0.4,
        lowres_prob=0.3, lowres_zoom=(0.4, 1.0),
    ),
}
AUGMENT_PRESETS_3D = tuple(PRESETS_3D)

_AXES_KEYS = ("mirror_axes", "rotate_axes")
_RANGE_KEYS = ("scale", "gamma", "lowres_zoom")
# Scalar parameters: (lowest, highest) allowed, both inclusive.
_SCALAR_LIMITS = {
    "rotate": (0.0, 180.0),
    "elastic_alpha": (0.0, math.inf),
    "brightness": (0.0, math.inf),
    "contrast": (0.0, 1.0),
    "noise_std": (0.0, math.inf),
}


def get_augmentation_3d(augment):
    """Resolve a 3-D augmentation preset name or parameter dict into a full, checked dict.

    Args:
        augment: one of :data:`AUGMENT_PRESETS_3D` (``"none"``, ``"light"``, ``"default"``,
            ``"strong"``), ``None`` (same as ``"none"``), or a dict of parameters from
            :data:`PRESETS_3D` (missing ones are off), optionally with a ``"preset"`` key
            naming the preset that the other keys override.

    Returns:
        A new dict with every parameter: probabilities and sizes as floats, ranges as
        ``(low, high)`` float tuples, axes as int tuples (JSON-able).

    Raises:
        ValueError: naming the parameter and what it must be, for an unknown preset or
            parameter name, a probability outside [0, 1], axes not among 0, 1, 2 or
            repeated, a range that is not ``(low, high)`` with ``0 < low <= high`` (and
            ``high <= 1`` for ``lowres_zoom``), or a size out of its bounds.

    Example:
        >>> get_augmentation_3d("default")["gamma"]
        (0.7, 1.5)
        >>> get_augmentation_3d({"preset": "default", "mirror_axes": [2, 1]})["mirror_axes"]
        (2, 1)
        >>> get_augmentation_3d({"rotate_prob": 0.5, "rotate": 20})["rotate_axes"]
        (0, 1, 2)
        >>> get_augmentation_3d({"mirror_prob": 1.5})
        Traceback (most recent call last):
        ...
        ValueError: `mirror_prob` must be a probability in [0, 1]. Received: mirror_prob=1.5
    """
    choices = f"one of {list(AUGMENT_PRESETS_3D)} or a dict of parameters"
    if augment is None:
        augment = "none"
    if isinstance(augment, str):
        if augment not in PRESETS_3D:
            raise ValueError(f"`augment` must be {choices}. Received: augment={augment!r}")
        return _copy(PRESETS_3D[augment])
    if not isinstance(augment, dict):
        raise ValueError(f"`augment` must be {choices}. Received: augment={augment!r}")
    overrides = dict(augment)
    preset = overrides.pop("preset", "none")
    if not isinstance(preset, str) or preset not in PRESETS_3D:
        raise ValueError(f"`preset` must be one of {list(AUGMENT_PRESETS_3D)}. Received: preset={preset!r}")
    unknown = sorted(str(key) for key in set(overrides) - set(_OFF))
    if unknown:
        raise ValueError(f"`augment` parameters must be among {sorted(_OFF)}. Received unknown: {unknown}")
    return _copy(dict(PRESETS_3D[preset], **overrides))


def _copy(params):
    """Check ``params`` (every key of ``_OFF``) and return a copy with normalised types."""
    out = {}
    for key, value in params.items():
        if key in _AXES_KEYS:
            if (not isinstance(value, (tuple, list))
                    or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)
                    or any(v not in (0, 1, 2) for v in value) or len(set(value)) != len(value)):
                raise ValueError(
                    f"`{key}` must list distinct axes of (D, H, W) among 0, 1, 2, or be empty. "
                    f"Received: {key}={value!r}")
            out[key] = tuple(int(v) for v in value)
        elif key in _RANGE_KEYS:
            top = 1.0 if key == "lowres_zoom" else math.inf
            try:
                low, high = (float(v) for v in value)
                valid = 0.0 < low <= high <= top and not isinstance(value, str)
            except (TypeError, ValueError):
                valid = False
            if not valid:
                bound = "0 < low <= high <= 1" if top == 1.0 else "0 < low <= high"
                raise ValueError(f"`{key}` must be a range (low, high) with {bound}. Received: {key}={value!r}")
            out[key] = (low, high)
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or math.isnan(number):
                raise ValueError(f"`{key}` must be a number. Received: {key}={value!r}")
            if key.endswith("_prob") and not 0.0 <= number <= 1.0:
                raise ValueError(f"`{key}` must be a probability in [0, 1]. Received: {key}={value!r}")
            if key == "elastic_sigma" and not 0.0 < number < math.inf:
                raise ValueError(f"`{key}` must be positive (voxels). Received: {key}={value!r}")
            low, high = _SCALAR_LIMITS.get(key, (-math.inf, math.inf))
            if not low <= number <= high:
                raise ValueError(f"`{key}` must be in [{low:g}, {high:g}]. Received: {key}={value!r}")
            out[key] = number
    return out


def mirrored_axes(params):
    """Return the axes of ``(D, H, W)`` that augmentation ``params`` may mirror, sorted.

    Test-time augmentation should mirror only along these axes.

    Args:
        params: a preset name or parameter dict, as for :func:`get_augmentation_3d`.

    Returns:
        A sorted list of axes among 0, 1, 2; empty when ``mirror_prob`` is 0.

    Raises:
        ValueError: as :func:`get_augmentation_3d`.

    Example:
        >>> mirrored_axes("default")
        [0, 1, 2]
        >>> mirrored_axes({"preset": "default", "mirror_axes": [2, 0]})
        [0, 2]
        >>> mirrored_axes("none")
        []
    """
    params = get_augmentation_3d(params)
    return sorted(params["mirror_axes"]) if params["mirror_prob"] > 0 else []


# ----------------------------------------------------------------------------- helpers


def _rotation_matrices(angles):
    """Forward rotation matrices ``(B, 3, 3)`` for ``angles`` ``(B, 3)`` in radians about
    axes 0, 1, 2 (applied in that order); see the module docstring for the direction."""
    import tensorflow as tf

    result = None
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        cos, sin = tf.cos(angles[:, axis]), tf.sin(angles[:, axis])
        one, zero = tf.ones_like(cos), tf.zeros_like(cos)
        entries = [[one if i == j else zero for j in range(3)] for i in range(3)]
        entries[u][u], entries[u][v], entries[v][u], entries[v][v] = cos, -sin, sin, cos
        matrix = tf.stack([tf.stack(row, axis=-1) for row in entries], axis=-2)
        result = matrix if result is None else tf.matmul(matrix, result)
    return result


def _spatial_transform(images, labels, inverse, field=None):
    """Resample ``images`` ``(B, D, H, W, C)`` (trilinear) and ``labels`` ``(B, D, H, W)``
    (nearest) at ``centre + inverse @ (p - centre) + field(p)`` for every output voxel ``p``.

    ``inverse`` ``(B, 3, 3)`` maps output to input voxel offsets from the centre; ``field``
    ``(B, D, H, W, 3)`` (or None) adds displacements in input voxels. Outside the volume
    images read 0 and labels 0.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    sizes = tf.cast(shape[1:4], tf.float32)
    centre = (sizes - 1.0) / 2.0
    grid = tf.stack(tf.meshgrid(*(tf.range(sizes[i]) for i in range(3)), indexing="ij"), axis=-1)
    coords = tf.einsum("bij,dhwj->bdhwi", inverse, grid - centre) + centre
    if field is not None:
        coords = coords + field
    # A zero border of one voxel: samples beyond it clamp onto it and read 0. Voxels are
    # gathered by their index in the flattened padded batch (faster than gather_nd).
    pad = [[0, 0], [1, 1], [1, 1], [1, 1]]
    flat_images = tf.reshape(tf.pad(images, pad + [[0, 0]]), [-1, shape[4]])
    flat_labels = tf.reshape(tf.pad(labels, pad), [-1])
    padded = shape[1:4] + 2
    coords = tf.clip_by_value(coords + 1.0, 0.0, sizes + 1.0)
    base = (tf.range(shape[0]) * tf.reduce_prod(padded))[:, None, None, None]
    strides = (padded[1] * padded[2], padded[2], 1)

    def index(axis, position):  # int index along ``axis``, times its stride
        return tf.minimum(tf.cast(position, tf.int32), padded[axis] - 1) * strides[axis]

    nearest = [index(axis, tf.floor(coords[..., axis] + 0.5)) for axis in range(3)]  # halves round up
    out_labels = tf.gather(flat_labels, base + nearest[0] + nearest[1] + nearest[2])
    low = tf.floor(coords)
    weight = coords - low
    corners = [(index(axis, low[..., axis]), index(axis, low[..., axis] + 1.0)) for axis in range(3)]

    def lerp(a, b, axis):
        w = weight[..., axis:axis + 1]
        return a * (1.0 - w) + b * w

    planes = []
    for z in corners[0]:
        rows = [lerp(*(tf.gather(flat_images, base + z + y + x) for x in corners[2]), 2) for y in corners[1]]
        planes.append(lerp(*rows, 1))
    return lerp(*planes, 0), out_labels


def _smoothing_matrix(size, kernel):
    """``(size, size)`` matrix of a 1-D convolution with ``kernel``, border replicated."""
    import tensorflow as tf

    radius = len(kernel) // 2
    rows = tf.range(size)[:, None]
    cols = tf.clip_by_value(rows + tf.range(-radius, radius + 1)[None, :], 0, size - 1)
    index = tf.stack([tf.broadcast_to(rows, tf.shape(cols)), cols], axis=-1)
    weights = tf.broadcast_to(tf.constant(kernel)[None, :], tf.shape(cols))
    return tf.scatter_nd(tf.reshape(index, [-1, 2]), tf.reshape(weights, [-1]), tf.stack([size, size]))


def _elastic_field(noise, alpha, sigma):
    """Displacement fields ``(B, D, H, W, 3)`` from standard normal ``noise`` of that shape:
    smoothed by a Gaussian of ``sigma`` voxels, largest displacement ``alpha`` voxels."""
    import tensorflow as tf

    kernel = _gaussian_kernel(sigma)
    shape = tf.shape(noise)
    field = noise
    for axis, spec in ((1, "ij,bjhwc->bihwc"), (2, "ij,bdjwc->bdiwc"), (3, "ij,bdhjc->bdhic")):
        field = tf.einsum(spec, _smoothing_matrix(shape[axis], kernel), field)
    length = tf.reduce_max(tf.norm(field, axis=-1), axis=[1, 2, 3])
    return field * (alpha / tf.maximum(length, 1e-12))[:, None, None, None, None]


def _low_resolution(images, zoom):
    """Downsample each example of ``images`` ``(B, D, H, W, C)`` by ``zoom`` ``(B,)`` on every
    axis (nearest neighbour) and upsample it back to its size (trilinear, half-voxel centres)."""
    import tensorflow as tf

    for axis in (1, 2, 3):
        size = tf.cast(tf.shape(images)[axis], tf.float32)
        small = tf.maximum(tf.round(size * zoom), 1.0)[:, None]
        # Where each output voxel lies on the small grid, and the source voxel that each
        # small-grid voxel took when downsampling.
        place = tf.clip_by_value((tf.range(size)[None] + 0.5) * small / size - 0.5, 0.0, small - 1.0)
        first = tf.floor(place)
        second = tf.minimum(first + 1.0, small - 1.0)

        def source(j):
            return tf.cast(tf.clip_by_value(tf.floor((j + 0.5) * size / small), 0.0, size - 1.0), tf.int32)

        weight = tf.reshape(place - first, [tf.shape(images)[0]] + [1] * (axis - 1) + [-1] + [1] * (4 - axis))
        images = (tf.gather(images, source(first), axis=axis, batch_dims=1) * (1.0 - weight)
                  + tf.gather(images, source(second), axis=axis, batch_dims=1) * weight)
    return images


# -------------------------------------------------------------------------- augmentation


def tf_augment_3d(images, labels, seed, augment="default"):
    """Augment a batch of volumes (or one volume) in TensorFlow ops, reproducibly from a seed.

    The transforms, their order and conventions are in the module docstring. Random numbers
    are drawn with stateless ops from ``seed``, so the same seed gives the same output, and
    each example of a batch draws its own decisions and parameters. Works eagerly, in a
    ``tf.function`` and in ``tf.data`` ``map`` with unknown batch and spatial sizes; any
    ``D, H, W`` and any number of channels.

    Args:
        images: float ``(B, D, H, W, C)``, or one volume ``(D, H, W, C)``.
        labels: integer ``(B, D, H, W)``, or ``(D, H, W)``.
        seed: int, int64 scalar tensor, or int tensor of shape ``[2]``.
        augment: preset name or parameter dict (see :func:`get_augmentation_3d`).

    Returns:
        ``(images, labels)``: float32 images and labels of the input dtype, both of the input
        shapes. Labels only hold values of the input labels, and 0 where the spatial
        transform samples outside the volume.

    Raises:
        ValueError: for an invalid ``augment`` or mismatched ranks.

    Example:
        >>> import tensorflow as tf
        >>> x, y = tf_augment_3d(tf.ones((2, 8, 12, 10, 1)), tf.zeros((2, 8, 12, 10), tf.int32), seed=3)
        >>> tuple(x.shape), y.dtype.name
        ((2, 8, 12, 10, 1), 'int32')
        >>> z, _ = tf_augment_3d(x, y, seed=3, augment="none")
        >>> bool(tf.reduce_all(z == x))
        True
    """
    import tensorflow as tf

    p = get_augmentation_3d(augment)
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    labels = tf.convert_to_tensor(labels)
    if images.shape.rank not in (4, 5) or labels.shape.rank != images.shape.rank - 1:
        raise ValueError(
            "`images` must be (B, D, H, W, C) or (D, H, W, C) and `labels` (B, D, H, W) or "
            f"(D, H, W). Received: images with shape {images.shape}, labels with shape {labels.shape}")
    single = images.shape.rank == 4
    if single:
        images, labels = images[None], labels[None]
    image_shape, label_shape = images.shape, labels.shape
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=20)
    batch = tf.shape(images)[0]

    def uniform(i, low=0.0, high=1.0, shape=()):
        return tf.random.stateless_uniform(tf.stack([batch, *shape]), seed=seeds[i], minval=low, maxval=high)

    def chance(i, prob):
        return uniform(i) < prob

    def per_example(value, rank=5):
        return tf.reshape(value, [-1] + [1] * (rank - 1))

    if p["rotate_prob"] > 0 or p["scale_prob"] > 0 or p["elastic_prob"] > 0:
        rotating = chance(0, p["rotate_prob"])
        about = tf.constant([1.0 if axis in p["rotate_axes"] else 0.0 for axis in range(3)])
        angles = uniform(1, -p["rotate"], p["rotate"], [3]) * about * (math.pi / 180.0)
        angles = tf.where(rotating[:, None], angles, 0.0)
        scaling = chance(2, p["scale_prob"])
        scale = tf.where(scaling, uniform(3, *p["scale"]), 1.0)
        inverse = tf.linalg.matrix_transpose(_rotation_matrices(angles)) / scale[:, None, None]
        use = rotating | scaling
        extra = (inverse,)
        if p["elastic_prob"] > 0:
            deforming = chance(4, p["elastic_prob"])
            use = use | deforming
            # Noise drawn for the whole batch: an example's field does not depend on which
            # other examples are transformed.
            noise = tf.random.stateless_normal(tf.concat([tf.shape(labels), [3]], 0), seed=seeds[5])
            extra = (inverse, noise, deforming)

        def warp(x, y, matrix, noise=None, deforming=None):
            field = None
            if noise is not None:
                field = _update_selected(
                    deforming, lambda zero, n: (_elastic_field(n, p["elastic_alpha"], p["elastic_sigma"]),),
                    (tf.zeros_like(noise),), (noise,))[0]
            return _spatial_transform(x, y, matrix, field)

        # Only the drawn examples are resampled (the costliest transform here).
        images, labels = tf.cond(tf.reduce_any(use),
                                 lambda: _update_selected(use, warp, (images, labels), extra),
                                 lambda: (images, labels))

    axes = [1, 2, 3]

    def moments(x):
        mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
        return mean, tf.sqrt(variance)

    def where(use, new):
        return tf.where(per_example(use), new, images)

    if p["noise_prob"] > 0:
        sigma = per_example(uniform(7, 0.0, p["noise_std"]))
        noise = tf.random.stateless_normal(tf.shape(images), seed=seeds[8])
        images = where(chance(6, p["noise_prob"]), images + noise * sigma * moments(images)[1])
    if p["brightness_prob"] > 0:
        shift = per_example(uniform(10, -p["brightness"], p["brightness"]))
        images = where(chance(9, p["brightness_prob"]), images + shift * moments(images)[1])
    if p["contrast_prob"] > 0:
        factor = per_example(uniform(12, 1.0 - p["contrast"], 1.0 + p["contrast"]))
        mean = moments(images)[0]
        images = where(chance(11, p["contrast_prob"]), mean + (images - mean) * factor)
    if p["lowres_prob"] > 0:
        use = chance(13, p["lowres_prob"])
        zoom = uniform(14, *p["lowres_zoom"])
        images = tf.cond(tf.reduce_any(use),
                         lambda: _update_selected(use, lambda x, z: (_low_resolution(x, z),), (images,), (zoom,))[0],
                         lambda: images)
    if p["gamma_prob"] > 0:
        gamma = per_example(uniform(16, *p["gamma"]))
        low = tf.reduce_min(images, axis=axes, keepdims=True)
        span = tf.maximum(tf.reduce_max(images, axis=axes, keepdims=True) - low, 1e-8)
        images = where(chance(15, p["gamma_prob"]),
                       tf.pow(tf.clip_by_value((images - low) / span, 0.0, 1.0), gamma) * span + low)
    if p["mirror_prob"] > 0:
        for axis in p["mirror_axes"]:
            flip = chance(17 + axis, p["mirror_prob"])
            images = tf.where(per_example(flip), tf.reverse(images, [axis + 1]), images)
            labels = tf.where(per_example(flip, 4), tf.reverse(labels, [axis + 1]), labels)
    images, labels = tf.ensure_shape(images, image_shape), tf.ensure_shape(labels, label_shape)
    if single:
        images, labels = images[0], labels[0]
    return images, labels
