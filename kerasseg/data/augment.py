"""Data augmentation for 2-D segmentation: an albumentations path and an in-graph TF path.

Both backends read the same parameter set (a preset name, or a dict of the parameters in
:data:`PRESETS`), transform image and mask together, resample masks with nearest
neighbour only (a mask never holds an interpolated value), accept float32 images with any
number of channels (intensities are not assumed to be in [0, 1] or uint8), and are
reproducible from a seed:

* :class:`AlbumentationsAugmenter` (albumentations 2.0.8, NumPy, one image at a time):
  flips, 90-degree rotations, affine (scale, rotate, translate), elastic deformation, and
  intensity transforms written here for float data (albumentations' own brightness,
  contrast, gamma and noise transforms clip float images to [0, 1] or produce NaN on
  negative values, which breaks z-scored images).
* :func:`tf_augment` (TensorFlow ops, a batch at a time, stateless random): the same
  transforms, elastic deformation included, fast enough to run inside the ``tf.data``
  graph when the NumPy path would starve training.

Elastic deformation follows albumentations' ``ElasticTransform``: each pixel moves by
``alpha`` times a Gaussian-smoothed (``sigma`` pixels) field of standard normal noise
scaled to a largest magnitude of 1, one field per image axis; images are resampled
bilinearly, masks with nearest neighbour, and both reflect at the border (the noise is
smoothed with its border replicated).

Intensity transforms are relative to each image's statistics, so they behave the same on
z-scored, [0, 1] or raw images: brightness adds ``U(-b, b) * std``, contrast scales the
deviation from the mean by ``U(1 - c, 1 + c)``, gamma maps ``[min, max]`` to [0, 1],
raises it to ``U(gamma)`` and maps back, noise adds ``N(0, (U(0, s) * std)^2)``.
"""

import math
import queue
import random

import numpy as np

__all__ = [
    "PRESETS",
    "AUGMENT_PRESETS",
    "AUGMENT_BACKENDS",
    "get_augmentation",
    "flipped_axes",
    "AlbumentationsAugmenter",
    "tf_augment",
]

AUGMENT_BACKENDS = ("albumentations", "tf")

_OFF = {
    "flip_prob": 0.0,  # probability of each flip named in flip_axes
    # Image axes that may be flipped: 0 = rows (vertical flip), 1 = columns (horizontal
    # flip). Leave out an axis along which the classes depend on the side, e.g. the
    # anterior-posterior axis when anterior and posterior parts are separate classes.
    "flip_axes": (0, 1),
    "rot90_prob": 0.0,  # probability of a rotation by k * 90 degrees, k uniform in 0..3
    "affine_prob": 0.0,
    "scale": (1.0, 1.0),  # zoom factor range
    "rotate": 0.0,  # rotation range, +/- degrees
    "translate": 0.0,  # shift range, +/- fraction of the size
    "elastic_prob": 0.0,
    "elastic_alpha": 0.0,
    "elastic_sigma": 1.0,
    "brightness_prob": 0.0,
    "brightness": 0.0,  # shift range, +/- image standard deviations
    "contrast_prob": 0.0,
    "contrast": 0.0,  # contrast factor range 1 +/- contrast
    "gamma_prob": 0.0,
    "gamma": (1.0, 1.0),
    "noise_prob": 0.0,
    "noise_std": 0.0,  # largest noise std, in image standard deviations
}

PRESETS = {
    "none": dict(_OFF),
    "light": dict(
        _OFF,
        flip_prob=0.5,
        affine_prob=0.3,
        scale=(0.9, 1.1),
        rotate=10.0,
        translate=0.05,
        brightness_prob=0.15,
        brightness=0.1,
        contrast_prob=0.15,
        contrast=0.1,
    ),
    "default": dict(
        _OFF,
        flip_prob=0.5,
        rot90_prob=0.5,
        affine_prob=0.5,
        scale=(0.85, 1.25),
        rotate=30.0,
        translate=0.1,
        elastic_prob=0.2,
        elastic_alpha=300.0,
        elastic_sigma=12.0,
        brightness_prob=0.15,
        brightness=0.2,
        contrast_prob=0.15,
        contrast=0.25,
        gamma_prob=0.15,
        gamma=(0.7, 1.5),
        noise_prob=0.1,
        noise_std=0.1,
    ),
    "strong": dict(
        _OFF,
        flip_prob=0.5,
        rot90_prob=0.5,
        affine_prob=0.7,
        scale=(0.7, 1.4),
        rotate=45.0,
        translate=0.15,
        elastic_prob=0.3,
        elastic_alpha=600.0,
        elastic_sigma=12.0,
        brightness_prob=0.3,
        brightness=0.3,
        contrast_prob=0.3,
        contrast=0.35,
        gamma_prob=0.3,
        gamma=(0.6, 1.7),
        noise_prob=0.2,
        noise_std=0.2,
    ),
}
AUGMENT_PRESETS = tuple(PRESETS)


def get_augmentation(augment):
    """Resolve an augmentation preset name or parameter dict into a full parameter dict.

    Args:
        augment: one of :data:`AUGMENT_PRESETS` (``"none"``, ``"light"``, ``"default"``,
            ``"strong"``), ``None`` (same as ``"none"``), or a dict of parameters from
            :data:`PRESETS` (missing ones are off), optionally with a ``"preset"`` key
            naming the preset that the other keys override.

    Returns:
        A new dict with every parameter (JSON-able).

    Raises:
        ValueError: for an unknown preset or parameter name, or an invalid value.

    Example:
        >>> get_augmentation("light")["flip_prob"]
        0.5
        >>> get_augmentation({"preset": "default", "elastic_prob": 0.0})["elastic_prob"]
        0.0
        >>> get_augmentation({"preset": "light", "flip_axes": [1]})["flip_axes"]
        (1,)
    """
    if augment is None:
        augment = "none"
    if isinstance(augment, str):
        if augment not in PRESETS:
            raise ValueError(
                f"`augment` must be one of {list(AUGMENT_PRESETS)} or a dict of parameters. "
                f"Received: augment={augment!r}"
            )
        return _copy(PRESETS[augment])
    if not isinstance(augment, dict):
        raise ValueError(
            f"`augment` must be one of {list(AUGMENT_PRESETS)} or a dict of parameters. "
            f"Received: augment={augment!r}"
        )
    overrides = dict(augment)
    base = get_augmentation(overrides.pop("preset", "none"))
    unknown = sorted(set(overrides) - set(_OFF))
    if unknown:
        raise ValueError(
            f"`augment` parameters must be among {sorted(_OFF)}. Received unknown: {unknown}"
        )
    base.update(overrides)
    params = _copy(base)
    axes = params["flip_axes"]
    if len(set(axes)) != len(axes) or any(axis not in (0, 1) for axis in axes):
        raise ValueError(
            "`flip_axes` must list distinct image axes among 0 (rows) and 1 (columns), or "
            f"be empty. Received: flip_axes={list(axes)}"
        )
    for key, value in params.items():
        if key.endswith("_prob") and not 0.0 <= value <= 1.0:
            raise ValueError(f"`{key}` must be in [0, 1]. Received: {key}={value}")
    for key in ("scale", "gamma"):
        lo, hi = params[key]
        if not 0 < lo <= hi:
            raise ValueError(f"`{key}` must be a range (low, high) with 0 < low <= high. Received: {key}={params[key]}")
    return params


def _copy(params):
    copied = {}
    for key, value in params.items():
        if key == "flip_axes":
            if not isinstance(value, (tuple, list)) or any(
                    isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
                raise ValueError(
                    "`flip_axes` must be a list of image axes (0 = rows, 1 = columns). "
                    f"Received: flip_axes={value!r}"
                )
            copied[key] = tuple(int(v) for v in value)
        elif isinstance(value, (tuple, list)):
            copied[key] = tuple(float(x) for x in value)
        else:
            copied[key] = float(value)
    return copied


def flipped_axes(params):
    """Return the image axes that augmentation ``params`` flip (empty when flips are off).

    Args:
        params: a preset name or parameter dict, as for :func:`get_augmentation`.

    Returns:
        A list of image axes (0 = rows, 1 = columns).

    Raises:
        ValueError: as :func:`get_augmentation`.

    Example:
        >>> flipped_axes({"preset": "light", "flip_axes": [1]})
        [1]
        >>> flipped_axes("none")
        []
    """
    params = get_augmentation(params)
    return list(params["flip_axes"]) if params["flip_prob"] > 0 else []


# ------------------------------------------------------------------ NumPy intensity ops


def _spatial_axes(image):
    return tuple(range(image.ndim - 1))


def _brightness_np(image, shift):
    return image + np.float32(shift) * image.std(axis=_spatial_axes(image), keepdims=True)


def _contrast_np(image, factor):
    mean = image.mean(axis=_spatial_axes(image), keepdims=True)
    return mean + (image - mean) * np.float32(factor)


def _gamma_np(image, gamma):
    axes = _spatial_axes(image)
    lo = image.min(axis=axes, keepdims=True)
    span = np.maximum(image.max(axis=axes, keepdims=True) - lo, 1e-8)
    return np.power(np.clip((image - lo) / span, 0.0, 1.0), np.float32(gamma)) * span + lo


def _noise_np(image, noise, sigma):
    return image + noise * np.float32(sigma) * image.std(axis=_spatial_axes(image), keepdims=True)


def _albumentations_transforms(params, square):
    """Build the albumentations transform list for ``params``; imported lazily."""
    import albumentations as A
    import cv2
    from albumentations.core.transforms_interface import ImageOnlyTransform

    class _Intensity(ImageOnlyTransform):
        """One float-safe intensity transform drawn from the transform's own generator."""

        def __init__(self, kind, low, high, p):
            super().__init__(p=p)
            self.kind, self.low, self.high = kind, low, high

        def get_params_dependent_on_data(self, params, data):
            value = float(self.random_generator.uniform(self.low, self.high))
            out = {"value": value}
            if self.kind == "noise":
                shape = data["image"].shape
                out["noise"] = self.random_generator.standard_normal(shape, dtype=np.float32)
            return out

        def apply(self, img, value=0.0, noise=None, **params):
            img = img.astype(np.float32, copy=False)
            if self.kind == "brightness":
                out = _brightness_np(img, value)
            elif self.kind == "contrast":
                out = _contrast_np(img, value)
            elif self.kind == "gamma":
                out = _gamma_np(img, value)
            else:
                out = _noise_np(img, noise, value)
            return out.astype(np.float32, copy=False)

        def get_transform_init_args_names(self):
            return ("kind", "low", "high")

    p = params
    border = cv2.BORDER_REFLECT
    transforms = []
    if p["flip_prob"] > 0:
        if 1 in p["flip_axes"]:
            transforms.append(A.HorizontalFlip(p=p["flip_prob"]))
        if 0 in p["flip_axes"]:
            transforms.append(A.VerticalFlip(p=p["flip_prob"]))
    if p["rot90_prob"] > 0 and square:
        transforms.append(A.RandomRotate90(p=p["rot90_prob"]))
    if p["affine_prob"] > 0:
        transforms.append(
            A.Affine(
                scale=tuple(p["scale"]),
                rotate=(-p["rotate"], p["rotate"]),
                translate_percent=(-p["translate"], p["translate"]),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=border,
                p=p["affine_prob"],
            )
        )
    if p["elastic_prob"] > 0:
        transforms.append(
            A.ElasticTransform(
                alpha=p["elastic_alpha"],
                sigma=p["elastic_sigma"],
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=border,
                p=p["elastic_prob"],
            )
        )
    if p["brightness_prob"] > 0:
        transforms.append(_Intensity("brightness", -p["brightness"], p["brightness"], p["brightness_prob"]))
    if p["contrast_prob"] > 0:
        transforms.append(_Intensity("contrast", 1 - p["contrast"], 1 + p["contrast"], p["contrast_prob"]))
    if p["gamma_prob"] > 0:
        transforms.append(_Intensity("gamma", p["gamma"][0], p["gamma"][1], p["gamma_prob"]))
    if p["noise_prob"] > 0:
        transforms.append(_Intensity("noise", 0.0, p["noise_std"], p["noise_prob"]))
    return transforms


class AlbumentationsAugmenter:
    """Augment one ``(image, mask)`` pair with albumentations, reproducibly from a seed.

    Each call seeds one random generator shared by all transforms of the pipeline (a
    ``Compose(..., seed=s)`` in albumentations 2.0.8 gives every transform the same seed,
    which makes e.g. the horizontal and vertical flips fire together). Safe to call from
    several threads (``tf.data`` parallel map): a call takes an idle pipeline from a pool
    (or builds one) and returns it afterwards.

    Args:
        augment: preset name or parameter dict, see :func:`get_augmentation`.

    Call args:
        image: float32 ``(H, W, C)``, any number of channels, any intensity range.
        mask: integer ``(H, W)`` label map.
        seed: non-negative int; the same seed gives the same result.

    Returns:
        ``(image, mask)``: float32 image and a mask of the input's dtype whose values are
        a subset of the input mask's values.

    Raises:
        ValueError: for an invalid ``augment``, or arrays of the wrong rank/shape.

    Example:
        >>> aug = AlbumentationsAugmenter("default")
        >>> image, mask = aug(np.zeros((64, 64, 3), "float32"), np.zeros((64, 64), "int32"), seed=1)
        >>> image.shape, mask.shape
        ((64, 64, 3), (64, 64))
    """

    def __init__(self, augment="default"):
        self.params = get_augmentation(augment)
        self.augment = augment
        # Idle pipelines, reused across calls. A pool rather than thread-local storage:
        # tf.numpy_function runs Python on TF's own threads with a fresh thread state per
        # call, which would rebuild a thread-local pipeline every time.
        self._idle = {True: queue.SimpleQueue(), False: queue.SimpleQueue()}

    def _acquire(self, square):
        try:
            return self._idle[square].get_nowait()
        except queue.Empty:
            import albumentations as A

            transforms = _albumentations_transforms(self.params, square)
            return A.Compose(transforms, p=1.0) if transforms else None

    def __call__(self, image, mask, seed=0):
        image = np.asarray(image, dtype=np.float32)
        mask = np.asarray(mask)
        if image.ndim != 3 or mask.shape != image.shape[:2]:
            raise ValueError(
                "`image` must be (H, W, C) and `mask` (H, W) of the same size. "
                f"Received: image with shape {image.shape}, mask with shape {mask.shape}"
            )
        square = image.shape[0] == image.shape[1]
        compose = self._acquire(square)
        if compose is None:
            self._idle[square].put(compose)
            return image.copy(), mask.copy()
        try:
            seed = int(seed) % (2**63)
            compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
            work_mask = mask.astype(np.int32) if mask.dtype not in (np.uint8, np.int32) else mask
            out = compose(image=np.ascontiguousarray(image), mask=np.ascontiguousarray(work_mask))
        finally:
            self._idle[square].put(compose)
        out_image = np.ascontiguousarray(out["image"], dtype=np.float32)
        if out_image.ndim == 2:  # single channel squeezed by OpenCV
            out_image = out_image[..., None]
        return out_image, np.ascontiguousarray(out["mask"]).astype(mask.dtype, copy=False)


# -------------------------------------------------------------------------- TF fast path


def _as_seed(seed):
    import tensorflow as tf

    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    return tf.cast(seed, tf.int64)


def _gaussian_kernel(sigma):
    radius = max(1, int(round(4.0 * sigma)))  # the size OpenCV picks for float images
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _reflect(coord, size):
    """Reflect continuous pixel coordinates into ``[0, size - 1]`` (edge pixel repeated)."""
    import tensorflow as tf

    size = tf.cast(size, tf.float32)
    t = tf.math.floormod(coord + 0.5, 2.0 * size)
    t = tf.where(t > size, 2.0 * size - t, t)
    return tf.clip_by_value(t - 0.5, 0.0, size - 1.0)


def _update_selected(use, transform, updated, extra=()):
    """Return the tensors ``updated`` with the examples where ``use`` holds replaced.

    ``transform`` takes those examples of every tensor in ``updated`` and then ``extra``
    (all batch-first) and returns their new values, one per tensor in ``updated``.
    """
    import tensorflow as tf

    index = tf.where(use)
    picked = [tf.gather(t, index[:, 0]) for t in (*updated, *extra)]
    return tuple(tf.tensor_scatter_nd_update(t, index, new)
                 for t, new in zip(updated, transform(*picked)))


def _elastic_tf(images, labels, noise, alpha, sigma):
    """Elastic deformation of every example of ``images`` ``(B, H, W, C)`` and ``labels``,
    its field made from ``noise`` ``(B, H, W, 2)`` (standard normal)."""
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    # As albumentations: the noise of each image scaled to a largest magnitude of 1.
    noise = noise / tf.maximum(tf.reduce_max(tf.abs(noise), axis=[1, 2, 3], keepdims=True), 1e-6)
    kernel = tf.constant(_gaussian_kernel(sigma))
    size = int(kernel.shape[0])
    rows = tf.tile(tf.reshape(kernel, [size, 1, 1, 1]), [1, 1, 2, 1])
    cols = tf.tile(tf.reshape(kernel, [1, size, 1, 1]), [1, 1, 2, 1])

    radius = size // 2

    def replicate(n):  # indices that repeat the edge pixel ``radius`` times on each side
        return tf.clip_by_value(tf.range(-radius, n + radius), 0, n - 1)

    # Smoothing with the border replicated, as albumentations does.
    field = tf.gather(tf.gather(noise, replicate(height), axis=1), replicate(width), axis=2)
    field = tf.nn.depthwise_conv2d(field, rows, [1, 1, 1, 1], "VALID")
    field = tf.nn.depthwise_conv2d(field, cols, [1, 1, 1, 1], "VALID")
    field = field * alpha
    grid_y, grid_x = tf.meshgrid(tf.range(height, dtype=tf.float32),
                                 tf.range(width, dtype=tf.float32), indexing="ij")
    y = _reflect(grid_y[None] + field[..., 0], height)
    x = _reflect(grid_x[None] + field[..., 1], width)
    b = tf.broadcast_to(tf.range(batch)[:, None, None], tf.shape(y))

    def gather(source, yy, xx):
        return tf.gather_nd(source, tf.stack([b, yy, xx], axis=-1))

    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, height - 1), tf.minimum(x0 + 1, width - 1)
    top = gather(images, y0, x0) * (1.0 - wx) + gather(images, y0, x1) * wx
    bottom = gather(images, y1, x0) * (1.0 - wx) + gather(images, y1, x1) * wx
    warped = top * (1.0 - wy) + bottom * wy
    nearest = gather(labels, tf.cast(tf.round(y), tf.int32), tf.cast(tf.round(x), tf.int32))
    return tf.ensure_shape(warped, images.shape), tf.ensure_shape(nearest, labels.shape)


def tf_augment(images, labels, seed, augment="default"):
    """Augment a batch (or one example) in TensorFlow ops, reproducibly from a seed.

    Flips, 90-degree rotations (square images; otherwise 0 or 180 degrees), affine scale,
    rotation and translation are composed into one projective transform per example and
    applied with ``ImageProjectiveTransformV3``: bilinear for images, nearest for labels,
    reflecting at the border. Then elastic deformation (see the module docstring), then
    brightness, contrast, gamma and noise. Random numbers are drawn
    with stateless ops from ``seed``, so the same seed gives the same output; each
    example of a batch gets its own random parameters.

    Args:
        images: float ``(B, H, W, C)`` or ``(H, W, C)``.
        labels: integer ``(B, H, W)`` or ``(H, W)``.
        seed: int or int tensor of shape ``[2]``.
        augment: preset name or parameter dict (see :func:`get_augmentation`).

    Returns:
        ``(images, labels)``: float32 images and labels of the input dtype and shape.

    Raises:
        ValueError: for an invalid ``augment`` or mismatched ranks.

    Example:
        >>> import tensorflow as tf
        >>> x, y = tf_augment(tf.zeros((2, 32, 32, 3)), tf.zeros((2, 32, 32), tf.int32), seed=7)
        >>> tuple(x.shape), tuple(y.shape)
        ((2, 32, 32, 3), (2, 32, 32))
    """
    import tensorflow as tf

    p = get_augmentation(augment)
    images = tf.convert_to_tensor(images)
    images = tf.cast(images, tf.float32)
    labels = tf.convert_to_tensor(labels)
    if images.shape.rank not in (3, 4) or labels.shape.rank != images.shape.rank - 1:
        raise ValueError(
            "`images` must be (B, H, W, C) or (H, W, C) and `labels` (B, H, W) or (H, W). "
            f"Received: images with shape {images.shape}, labels with shape {labels.shape}"
        )
    single = images.shape.rank == 3
    if single:
        images, labels = images[None], labels[None]
    label_dtype = labels.dtype
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=16)
    batch = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]

    def uniform(i, low=0.0, high=1.0):
        return tf.random.stateless_uniform([batch], seed=seeds[i], minval=low, maxval=high)

    def chance(i, prob):
        return uniform(i) < prob

    spatial = p["flip_prob"] > 0 or p["rot90_prob"] > 0 or p["affine_prob"] > 0
    if spatial:
        one = tf.ones([batch])
        fx = tf.where(chance(0, p["flip_prob"] if 1 in p["flip_axes"] else 0.0), -one, one)
        fy = tf.where(chance(1, p["flip_prob"] if 0 in p["flip_axes"] else 0.0), -one, one)
        static_h, static_w = images.shape[1], images.shape[2]
        square = static_h is not None and static_h == static_w
        k = tf.random.stateless_uniform([batch], seed=seeds[2], minval=0, maxval=4, dtype=tf.int32)
        if not square:
            k = (k // 2) * 2  # 0 or 180 degrees keep a non-square shape
        k = tf.where(chance(3, p["rot90_prob"]), k, tf.zeros_like(k))
        cos_k = tf.gather(tf.constant([1.0, 0.0, -1.0, 0.0]), k)
        sin_k = tf.gather(tf.constant([0.0, 1.0, 0.0, -1.0]), k)
        use_affine = chance(4, p["affine_prob"])
        angle = tf.where(use_affine, uniform(5, -p["rotate"], p["rotate"]) * (math.pi / 180.0), 0.0)
        lo, hi = p["scale"]
        scale = tf.where(use_affine, uniform(6, lo, hi), one)
        h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
        tx = tf.where(use_affine, uniform(7, -p["translate"], p["translate"]) * w, 0.0)
        ty = tf.where(use_affine, uniform(8, -p["translate"], p["translate"]) * h, 0.0)
        # Inverse map (output pixel -> input pixel) about the image centre:
        # M = R(k * 90) R(angle) diag(fx, fy) / scale.
        cos_a, sin_a = tf.cos(angle), tf.sin(angle)
        r00 = cos_k * cos_a - sin_k * sin_a
        r01 = -(cos_k * sin_a + sin_k * cos_a)
        r10 = sin_k * cos_a + cos_k * sin_a
        r11 = cos_k * cos_a - sin_k * sin_a
        m00, m01 = r00 * fx / scale, r01 * fy / scale
        m10, m11 = r10 * fx / scale, r11 * fy / scale
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        zeros = tf.zeros([batch])
        transforms = tf.stack(
            [m00, m01, cx + tx - m00 * cx - m01 * cy, m10, m11, cy + ty - m10 * cx - m11 * cy, zeros, zeros],
            axis=1,
        )
        shape = tf.stack([height, width])
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=shape, fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT",
        )
        warped = tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(labels[..., None], tf.float32), transforms=transforms,
            output_shape=shape, fill_value=0.0, interpolation="NEAREST", fill_mode="REFLECT",
        )
        labels = tf.cast(tf.round(warped[..., 0]), label_dtype)

    if p["elastic_prob"] > 0:
        elastic_seeds = tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(_as_seed(seed), 16), num=2)
        use = tf.random.stateless_uniform([batch], seed=elastic_seeds[0]) < p["elastic_prob"]
        # Only the drawn examples are warped (the field is the costliest transform here).

        def warp_drawn():
            # The noise is drawn for the whole batch, so an example's field does not depend
            # on which other examples were drawn.
            noise = tf.random.stateless_normal(tf.stack([batch, height, width, 2]),
                                               seed=elastic_seeds[1])
            return _update_selected(
                use, lambda x, y, n: _elastic_tf(x, y, n, p["elastic_alpha"], p["elastic_sigma"]),
                (images, labels), (noise,))

        # (An empty batch would not pass through the smoothing convolutions.)
        images, labels = tf.cond(tf.reduce_any(use), warp_drawn, lambda: (images, labels))

    def on_selected(use, transform, *values):
        """Apply ``transform(sub_images, *sub_values)`` to the examples where ``use`` holds
        (``values`` hold one number per example)."""
        scalars = tuple(v[:, None, None, None] for v in values)
        return _update_selected(use, lambda x, *v: (transform(x, *v),), (images,), scalars)[0]

    def moments(x):
        mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return mean, tf.sqrt(var)

    if p["brightness_prob"] > 0:
        shift = uniform(9, -p["brightness"], p["brightness"])
        images = on_selected(chance(10, p["brightness_prob"]), lambda x, s: x + s * moments(x)[1], shift)
    if p["contrast_prob"] > 0:
        factor = uniform(11, 1 - p["contrast"], 1 + p["contrast"])

        def contrast(x, f):
            mean = moments(x)[0]
            return mean + (x - mean) * f

        images = on_selected(chance(12, p["contrast_prob"]), contrast, factor)
    if p["gamma_prob"] > 0:
        gamma = uniform(13, p["gamma"][0], p["gamma"][1])

        def adjust_gamma(x, g):
            low = tf.reduce_min(x, axis=[1, 2], keepdims=True)
            span = tf.maximum(tf.reduce_max(x, axis=[1, 2], keepdims=True) - low, 1e-8)
            return tf.pow(tf.clip_by_value((x - low) / span, 0.0, 1.0), g) * span + low

        images = on_selected(tf.random.stateless_uniform([batch], seed=seeds[14]) < p["gamma_prob"], adjust_gamma, gamma)
    if p["noise_prob"] > 0:
        sub_seeds = tf.random.experimental.stateless_split(seeds[15], num=3)
        sigma = tf.random.stateless_uniform([batch], seed=sub_seeds[0], maxval=p["noise_std"])
        use = tf.random.stateless_uniform([batch], seed=sub_seeds[1]) < p["noise_prob"]

        def add_noise(x, s):
            noise = tf.random.stateless_normal(tf.shape(x), seed=sub_seeds[2])
            return x + noise * s * moments(x)[1]

        images = on_selected(use, add_noise, sigma)
    if single:
        images, labels = images[0], labels[0]
    return images, labels
