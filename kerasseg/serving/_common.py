"""Pieces shared by the REST and gRPC clients: reading images, cropping masks."""

import os

import numpy as np

TENSOR_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serving_bytes"
TENSOR_INPUT = "image"
BYTES_INPUT = "image_bytes"
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def read_encoded(paths):
    """Read PNG/JPEG files as bytes, checking that they exist and look like images.

    Args:
        paths: a path or a list of paths.

    Returns:
        A list of ``bytes``.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: if a file is neither PNG nor JPEG.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Image file not found: {path}")
        with open(path, "rb") as handle:
            data = handle.read()
        check_encoded(data, name=path)
        out.append(data)
    return out


def check_encoded(data, name="image"):
    """Raise ``ValueError`` unless ``data`` starts like a PNG or JPEG file."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(
            f"Encoded images must be bytes (PNG or JPEG file contents). Received: "
            f"{type(data).__name__} for {name}"
        )
    if not bytes(data[:8]).startswith(_MAGIC):
        raise ValueError(f"{name} is not a PNG or JPEG file (unrecognized first bytes).")


def check_images(images):
    """Return ``images`` as float32 ``(N, H, W, C)`` or raise ``ValueError``."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(
            "`images` must be a float array (N, H, W, C) or one image (H, W, C). "
            f"Received: images with shape {images.shape}"
        )
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"`images` must be numeric. Received: dtype {images.dtype}")
    return images.astype(np.float32, copy=False)


def crop_masks(mask, image_size):
    """Split a ``serving_bytes`` batch into one mask per image, at its own size.

    Args:
        mask: int array ``(N, H_max, W_max)``, padded with -1 beyond each image.
        image_size: int array ``(N, 2)``, each image's height and width.

    Returns:
        A list of ``N`` int32 arrays ``(height_i, width_i)``.

    Example:
        >>> crop_masks(np.zeros((1, 4, 4)), [[2, 3]])[0].shape
        (2, 3)
    """
    mask = np.asarray(mask)
    sizes = np.asarray(image_size).reshape(-1, 2)
    if mask.ndim != 3 or len(mask) != len(sizes):
        raise ValueError(
            "`mask` must be (N, H, W) with one `image_size` row per image. Received: mask "
            f"{mask.shape}, image_size {sizes.shape}"
        )
    return [mask[i, : int(h), : int(w)].astype(np.int32) for i, (h, w) in enumerate(sizes)]
