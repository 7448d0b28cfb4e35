"""Reading and writing images and label maps, 2-D files and volumes with their geometry.

Two families of files are handled:

* volumes, read and written with SimpleITK, keeping spacing, origin and direction:
  NIfTI (``.nii.gz``, ``.nii``), MetaImage (``.mhd`` + ``.raw``, ``.mha``) and NRRD
  (``.nrrd``, ``.nhdr``);
* plain 2-D images, read and written with OpenCV: PNG, JPEG, TIFF, BMP and GIF. Colour
  images are returned in RGB order; an alpha channel is dropped. Their geometry is the
  unit 2-D :class:`~kerasseg.data.types.Geometry`.

Arrays follow the conventions of :mod:`kerasseg.data.types`: images are float32
``(D, H, W, C)``, label maps integer ``(D, H, W)``. Every writer is atomic: the file (and a
``.mhd`` file's ``.raw`` companion) is written in a hidden folder beside the target and then
renamed into place (:func:`kerasseg.files.atomic_files`), so that a reader never sees half
a file.
"""

import gzip
import os
import pathlib
import struct
import zlib

import cv2
import numpy as np
import SimpleITK as sitk

from kerasseg.data.errors import DataError
from kerasseg.data.types import Geometry
from kerasseg.files import atomic_files

VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".mhd", ".mha", ".nrrd", ".nhdr")
PLANAR_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
SUPPORTED_EXTENSIONS = VOLUME_EXTENSIONS + PLANAR_EXTENSIONS
LABEL_PLANAR_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")

_METAIMAGE_TYPE_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}


def split_extension(path):
    """Split a file name into stem and lower-case extension, ``.nii.gz`` counting as one.

    Args:
        path: file path or name.

    Returns:
        ``(stem, extension)``, e.g. ``("hippocampus_001", ".nii.gz")``.

    Example:
        >>> split_extension("/data/Case05_segmentation.mhd")
        ('Case05_segmentation', '.mhd')
    """
    name = pathlib.Path(path).name
    if name.lower().endswith(".nii.gz"):
        return name[: -len(".nii.gz")], ".nii.gz"
    stem, ext = os.path.splitext(name)
    return stem, ext.lower()


def is_supported(path):
    """Return whether ``path`` has an extension that :func:`read_image` can read.

    Args:
        path: file path or name.

    Returns:
        bool.

    Example:
        >>> is_supported("scan.nii.gz"), is_supported("notes.txt")
        (True, False)
    """
    return split_extension(path)[1] in SUPPORTED_EXTENSIONS


def read_image(path):
    """Read an image file as a float32 ``(D, H, W, C)`` array with its geometry.

    A 4-D NIfTI (the Decathlon's multi-modal files) has its 4th dimension moved to the
    channel axis; a vector-pixel volume gives its components as channels; a 2-D file gives
    ``D == 1``. Intensities are converted to float32 without rescaling.

    Args:
        path: file with one of :data:`SUPPORTED_EXTENSIONS`.

    Returns:
        ``(image, geometry)``: float32 array ``(D, H, W, C)`` and its
        :class:`~kerasseg.data.types.Geometry`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: unsupported extension, unreadable or truncated file, NaN or infinite
            values.

    Example:
        >>> import os
        >>> from kerasseg.sample import hippocampus_path
        >>> path = os.path.join(hippocampus_path(), "imagesTr", "hippocampus_001.nii.gz")
        >>> image, geometry = read_image(path)
        >>> image.shape, geometry.spacing
        ((35, 51, 35, 1), (1.0, 1.0, 1.0))
    """
    array, geometry = _read_native(path)
    if split_extension(path)[1] in PLANAR_EXTENSIONS and array.shape[-1] == 4:
        array = array[..., :3]
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        nan = int(np.isnan(array).sum())
        raise DataError(
            f"{path}: the image holds {nan} NaN and {int((~finite).sum()) - nan} infinite "
            "intensity value(s); expected finite numbers."
        )
    return array, geometry


def read_label(path):
    """Read a label map file as the integer values it stores, ``(D, H, W)`` int32.

    Stored values are returned as they are (a 0/255 mask stays 0/255); mapping them to
    class indices is the data set's job. Float files are accepted when every value is a
    whole number. A palette PNG/GIF whose palette holds colours gives its palette indices
    (read with Pillow); a grey palette gives the grey values. A mask saved with three equal
    colour channels is read as one channel.

    Args:
        path: label file with one of :data:`SUPPORTED_EXTENSIONS`.

    Returns:
        ``(label, geometry)``: int32 array ``(D, H, W)`` and the file's geometry.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: unreadable or truncated file, several differing channels (a colour
            mask), or non-integer / non-finite values.

    Example:
        >>> import os
        >>> from kerasseg.sample import hippocampus_path
        >>> path = os.path.join(hippocampus_path(), "labelsTr", "hippocampus_243.nii.gz")
        >>> label, geometry = read_label(path)  # a label file stored as float32
        >>> label.dtype, sorted(set(label.ravel().tolist()))
        (dtype('int32'), [0, 1, 2])
    """
    array, geometry = _read_native(path, palette_indices=True)
    if array.shape[-1] > 1:
        colour = array[..., :3] if array.shape[-1] == 4 else array
        if not all(
            np.array_equal(colour[..., 0], colour[..., c]) for c in range(1, colour.shape[-1])
        ):
            raise DataError(
                f"{path}: the mask has {array.shape[-1]} channels with different values "
                "(a colour mask). Expected one value per pixel: a grey or palette PNG, or a "
                "single-channel volume holding the class of each pixel."
            )
    return _to_integer_labels(array[..., 0], path), geometry


def read_info(path):
    """Read the shape and geometry of an image file without reading its voxels.

    (2-D files are decoded, which is cheap.)

    Args:
        path: file with one of :data:`SUPPORTED_EXTENSIONS`.

    Returns:
        ``((D, H, W, C), geometry)`` as :func:`read_image` would return them.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: unsupported extension or unreadable header.

    Example:
        >>> import os
        >>> from kerasseg.sample import hippocampus_path
        >>> path = os.path.join(hippocampus_path(), "imagesTr", "hippocampus_001.nii.gz")
        >>> shape, geometry = read_info(path)  # the header only
        >>> shape, geometry.spacing
        ((35, 51, 35, 1), (1.0, 1.0, 1.0))
    """
    path = _existing_file(path)
    ext = split_extension(path)[1]
    if ext in PLANAR_EXTENSIONS:
        image, geometry = read_image(path)
        return image.shape, geometry
    _check_extension(path, ext)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise _unreadable(path, error) from None
    size = tuple(reader.GetSize())
    channels = reader.GetNumberOfComponents()
    if len(size) == 4:
        size, channels = size[:3], size[3] * channels
    shape = (1,) + size[::-1] if len(size) == 2 else size[::-1]
    geometry = _make_geometry(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection())
    return tuple(int(s) for s in shape) + (int(channels),), geometry


def write_image(path, image, geometry=None, reference=None):
    """Write an image atomically, with its geometry for volume formats.

    Args:
        path: output file; its extension picks the format (:data:`SUPPORTED_EXTENSIONS`).
            Missing parent folders are created.
        image: array ``(D, H, W, C)`` (or ``(H, W)`` for a single 2-D slice). 2-D formats
            need ``D == 1`` and 1, 3 (RGB) or 4 (RGBA) channels, and integer values for
            PNG, JPEG, BMP and GIF; volumes with several channels are written as a 4-D NIfTI
            (channel last, as the Decathlon does) or as vector pixels in other formats.
        geometry: :class:`~kerasseg.data.types.Geometry` to store; by default that of
            ``reference``, else unit spacing at the origin.
        reference: optional path of the image this one belongs to; its geometry is used
            when ``geometry`` is None, and its spatial shape must match.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: bad array shape or dtype for the format, shape differing from
            ``reference``, or unsupported extension.

    Example:
        >>> import os
        >>> from kerasseg.sample import hippocampus_path
        >>> image, geometry = read_image(
        ...     os.path.join(hippocampus_path(), "imagesTr", "hippocampus_001.nii.gz"))
        >>> write_image("out/hippocampus_001.mha", image, geometry)
        'out/hippocampus_001.mha'
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None, ..., None]
    if image.ndim != 4:
        raise ValueError(
            f"`image` must be an array (D, H, W, C) or (H, W). Received: image.shape={image.shape}"
        )
    return _write(path, image, geometry, reference, is_label=False)


def write_label(path, label, geometry=None, reference=None, label_values=None):
    """Write a label map atomically, with the geometry of its input image.

    Use it to write a prediction back in the format of its input (see
    :func:`prediction_path`). Values are stored as uint8 (uint16 above 255).

    Args:
        path: output file: a volume format (:data:`VOLUME_EXTENSIONS`) or a lossless 2-D
            format (``.png``, ``.tif``, ``.tiff``, ``.bmp``). Parent folders are created.
        label: integer array ``(D, H, W)`` of class indices, or ``(H, W)``.
        geometry: :class:`~kerasseg.data.types.Geometry` to store; by default that of
            ``reference``, else unit spacing at the origin.
        reference: optional path of the input image; its geometry is used when
            ``geometry`` is None and its spatial shape must match ``label``.
        label_values: optional stored value of each class, the inverse of the loader's
            option: a list (index = class) or a dict ``{stored_value: class_index}``;
            e.g. ``[0, 255]`` writes a binary mask as 0/255.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: non-integer or negative labels, bad shape, a lossy format such as
            JPEG, a shape differing from ``reference``, or a class missing from
            ``label_values``.

    Example:
        >>> import os
        >>> from kerasseg.sample import hippocampus_path
        >>> reference = os.path.join(hippocampus_path(), "imagesTr", "hippocampus_001.nii.gz")
        >>> model_output = np.random.default_rng(0).random((35, 51, 35, 3))  # class scores
        >>> label = model_output.argmax(-1)
        >>> write_label(prediction_path(reference, "out"), label, reference=reference)
        'out/hippocampus_001.nii.gz'
    """
    label = np.asarray(label)
    if label.ndim == 2:
        label = label[None]
    if label.ndim != 3:
        raise ValueError(
            f"`label` must be an array (D, H, W) or (H, W). Received: label.shape={label.shape}"
        )
    if not (np.issubdtype(label.dtype, np.integer) or np.issubdtype(label.dtype, np.bool_)):
        if not np.all(np.isfinite(label)) or not np.array_equal(label, np.round(label)):
            raise ValueError(
                f"`label` must hold whole class indices. Received: label.dtype={label.dtype} "
                "with non-integer values"
            )
    label = label.astype(np.int64)
    if label.size and label.min() < 0:
        raise ValueError(f"`label` must be non-negative. Received: minimum {label.min()}")
    if label_values is not None:
        label = _classes_to_stored(label, label_values)
    top = int(label.max()) if label.size else 0
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int32
    return _write(path, label.astype(dtype)[..., None], geometry, reference, is_label=True)


def prediction_path(input_path, output_dir, suffix=None):
    """Name the file a prediction for ``input_path`` is written to, in the input's format.

    MetaImage inputs follow the PROMISE12 naming (``Case05.mhd`` ->
    ``Case05_segmentation.mhd``); NIfTI and NRRD keep their name, as Decathlon labels do
    (``hippocampus_001.nii.gz`` -> ``hippocampus_001.nii.gz``); 2-D images become a
    lossless PNG (``img.jpg`` -> ``img.png``).

    Args:
        input_path: the image the prediction was made for.
        output_dir: folder of the prediction.
        suffix: text appended to the stem instead of the default
            (``"_segmentation"`` for MetaImage, nothing otherwise).

    Returns:
        The output path as a string.

    Raises:
        ValueError: unsupported extension, or the result would overwrite ``input_path``.

    Example:
        >>> prediction_path("data/TestData/Case05.mhd", "out")
        'out/Case05_segmentation.mhd'
    """
    stem, ext = split_extension(input_path)
    if ext in (".mhd", ".mha"):
        name = stem + ("_segmentation" if suffix is None else suffix) + ext
    elif ext in VOLUME_EXTENSIONS:
        name = stem + (suffix or "") + ext
    elif ext in PLANAR_EXTENSIONS:
        name = stem + (suffix or "") + ".png"
    else:
        raise ValueError(
            f"`input_path` must have one of the extensions {list(SUPPORTED_EXTENSIONS)}. "
            f"Received: input_path={input_path}"
        )
    output = pathlib.Path(output_dir) / name
    if output.resolve() == pathlib.Path(input_path).resolve():
        raise ValueError(
            f"The prediction for {input_path} would overwrite it: choose another `output_dir` "
            f"or a `suffix`. Received: output_dir={output_dir}"
        )
    return str(output)


def geometry_difference(first, second, tolerance=1e-3):
    """Describe how two geometries differ beyond a tolerance, or return None.

    Spacings are compared relatively, origins in units of the voxel spacing, direction
    cosines absolutely, each against ``tolerance``.

    Args:
        first: :class:`~kerasseg.data.types.Geometry`.
        second: :class:`~kerasseg.data.types.Geometry`.
        tolerance: allowed difference (default 1e-3).

    Returns:
        A text such as ``"spacing (1, 1, 1) vs (1, 1, 2)"``, or None when they agree.

    Example:
        >>> geometry_difference(Geometry.identity(3), Geometry.identity(3)) is None
        True
    """
    if first.ndim != second.ndim:
        return f"dimensions {first.ndim} vs {second.ndim}"
    problems = []
    s1, s2 = np.asarray(first.spacing, float), np.asarray(second.spacing, float)
    if not np.allclose(s1, s2, rtol=tolerance, atol=0):
        problems.append(f"spacing {_fmt(first.spacing)} vs {_fmt(second.spacing)}")
    scale = np.maximum(np.abs(s1), 1e-12)
    if np.any(np.abs(np.subtract(first.origin, second.origin)) > tolerance * scale):
        problems.append(f"origin {_fmt(first.origin)} vs {_fmt(second.origin)}")
    if not np.allclose(first.direction, second.direction, rtol=0, atol=tolerance):
        problems.append(f"direction {_fmt(first.direction)} vs {_fmt(second.direction)}")
    return "; ".join(problems) or None


# ----------------------------------------------------------------------------- reading


def _read_native(path, palette_indices=False):
    """Read a file in its stored dtype as ``(D, H, W, C)`` plus geometry."""
    path = _existing_file(path)
    ext = split_extension(path)[1]
    _check_extension(path, ext)
    if ext in PLANAR_EXTENSIONS:
        return _read_planar(path, ext, palette_indices), Geometry.identity(2)
    return _read_volume(path, ext)


def _existing_file(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"File not found: {path}")
    if not path.is_file():
        raise DataError(f"{path}: expected an image file, found a folder.")
    return path


def _check_extension(path, ext):
    if ext not in SUPPORTED_EXTENSIONS:
        raise DataError(
            f"{path}: unsupported file type {ext or '(no extension)'}. "
            f"Expected one of {list(SUPPORTED_EXTENSIONS)}."
        )


def _read_planar(path, ext, palette_indices):
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes).")
    if palette_indices and ext in (".png", ".gif"):
        indices = _colour_palette_indices(path)
        if indices is not None:
            return indices[None, ..., None]
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(
            f"{path}: cannot decode the file as a {ext[1:].upper()} image "
            "(unreadable, truncated or not an image)."
        )
    if array.ndim == 2:
        array = array[..., None]
    elif array.shape[-1] == 3:
        array = array[..., ::-1]
    elif array.shape[-1] == 4:
        array = array[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(array[None])


def _colour_palette_indices(path):
    """Palette indices of a palette image with coloured entries, else None."""
    try:
        from PIL import Image
    except ImportError:  # Pillow missing: colour palettes are then read as colours.
        return None
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                return None
            indices = np.array(image)
            palette = np.array(image.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    except (OSError, ValueError):
        return None  # let OpenCV report the unreadable file
    used = np.unique(indices)
    used = used[used < len(palette)]
    colours = palette[used]
    if np.all(colours[:, 0] == colours[:, 1]) and np.all(colours[:, 1] == colours[:, 2]):
        return None
    return indices


def _read_volume(path, ext):
    nonfinite = None
    if ext in (".nii", ".nii.gz"):
        nonfinite = _check_nifti(path, ext)
    elif ext == ".mhd":
        _check_metaimage_data(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise _unreadable(path, error) from None
    array = sitk.GetArrayFromImage(image)
    dim, components = image.GetDimension(), image.GetNumberOfComponentsPerPixel()
    if nonfinite is not None:  # put back what SimpleITK turned into 0
        positions, values = nonfinite
        if (
            components != 1
            or not np.issubdtype(array.dtype, np.floating)
            or positions.max() >= array.size
        ):
            raise DataError(
                f"{path}: the file holds {positions.size} NaN or infinite value(s); "
                "expected finite numbers."
            )
        np.put(array, positions, values)
    if components == 1:
        array = array[..., None]
    if dim == 2:
        array = array[None]
    elif dim == 4:
        if components != 1:
            raise DataError(f"{path}: 4-D images with vector pixels are not supported.")
        array = np.moveaxis(array[..., 0], 0, -1)
    elif dim != 3:
        raise DataError(f"{path}: expected a 2-D, 3-D or 4-D image, found {dim}-D.")
    geometry = _make_geometry(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    return array, geometry


def _make_geometry(spacing, origin, direction):
    n = len(spacing)
    keep = min(n, 3)
    matrix = np.asarray(direction, dtype=float).reshape(n, n)[:keep, :keep]
    return Geometry(
        spacing=tuple(float(s) for s in spacing[:keep]),
        origin=tuple(float(o) for o in origin[:keep]),
        direction=tuple(float(d) for d in matrix.ravel()),
    )


def _unreadable(path, error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1][:200] if lines else type(error).__name__
    return DataError(
        f"{path}: cannot read the file (unreadable, truncated or not a valid "
        f"{split_extension(path)[1]} file; the reader said: {reason})."
    )


def _check_nifti(path, ext):
    """Check a NIfTI file's length, and find its NaN and infinite voxels.

    SimpleITK reads a truncated NIfTI file without complaint (the missing voxels become
    0) and replaces NaN and infinite voxels by 0, so both are checked on the raw data.

    Returns:
        None, or ``(positions, values)`` of the non-finite voxels in file order.
    """
    try:
        if ext == ".nii.gz":
            with gzip.open(path, "rb") as stream:
                header = stream.read(544)
        else:
            with open(path, "rb") as stream:
                header = stream.read(544)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot read the NIfTI header (unreadable or truncated: {error})."
        ) from None
    layout = _nifti_layout(header)
    if layout is None:
        return None  # not a header this check understands; SimpleITK reports problems itself
    offset, count, bitpix, float_dtype = layout
    expected = offset + count * bitpix // 8
    if ext == ".nii":
        found = os.path.getsize(path)
    else:
        with open(path, "rb") as stream:
            stream.seek(-4, os.SEEK_END)
            trailer = struct.unpack("<I", stream.read(4))[0]
        # the gzip trailer holds the data length: a match means a complete file
        found = expected if trailer == expected % 2**32 else _gzip_length(path)
    if found < expected:
        raise DataError(
            f"{path}: the file is truncated: its voxel data needs {expected} bytes, "
            f"found {found}."
        )
    if float_dtype is None:
        return None
    return _nonfinite_voxels(path, ext, offset, count, np.dtype(float_dtype))


def _nonfinite_voxels(path, ext, offset, count, dtype, chunk=1 << 22):
    """Positions and values of the NaN/inf voxels, reading the data in chunks."""
    positions, values = [], []
    opener = gzip.open if ext == ".nii.gz" else open
    with opener(path, "rb") as stream:
        stream.seek(offset)
        start = 0
        while start < count:
            voxels = np.frombuffer(stream.read(min(chunk, count - start) * dtype.itemsize), dtype)
            if voxels.size == 0:
                break
            bad = np.flatnonzero(~np.isfinite(voxels))
            if bad.size:
                positions.append(bad + start)
                values.append(voxels[bad])
            start += voxels.size
    if not positions:
        return None
    return np.concatenate(positions), np.concatenate(values)


def _nifti_layout(header):
    """``(vox_offset, voxel count, bitpix, float dtype or None)`` from a NIfTI-1/2 header."""
    if len(header) < 348:
        return None
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", header[:4])[0]
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if sizeof_hdr == 540 and len(header) >= 540:
            datatype, bitpix = struct.unpack(endian + "2h", header[12:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        return None
    if not 1 <= dims[0] <= 7 or bitpix <= 0 or any(d < 1 for d in dims[1 : dims[0] + 1]):
        return None
    count = int(np.prod(dims[1 : dims[0] + 1], dtype=np.int64))
    float_dtype = {16: endian + "f4", 64: endian + "f8"}.get(datatype)
    return offset, count, bitpix, float_dtype


def _gzip_length(path):
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    except (OSError, EOFError, zlib.error):
        return total
    return total


def _check_metaimage_data(path):
    """Name a missing or short ``.raw`` companion of a ``.mhd`` header."""
    fields = {}
    try:
        with open(path, "r", encoding="latin-1") as stream:
            for line in stream:
                key, sep, value = line.partition("=")
                if sep:
                    fields[key.strip()] = value.strip()
                if key.strip() == "ElementDataFile":
                    break
    except OSError as error:
        raise DataError(f"{path}: cannot read the MetaImage header ({error}).") from None
    data_file = fields.get("ElementDataFile")
    if (
        not data_file
        or data_file.upper() == "LOCAL"
        or data_file.upper().startswith("LIST")
        or "%" in data_file
    ):
        return
    data_path = path.parent / data_file
    if not data_path.is_file():
        raise DataError(
            f"{path}: the header refers to the data file {data_file}, which does not exist "
            f"(expected {data_path})."
        )
    compressed = fields.get("CompressedData", "False").lower() == "true"
    item = _METAIMAGE_TYPE_BYTES.get(fields.get("ElementType", ""))
    try:
        size = [int(v) for v in fields.get("DimSize", "").split()]
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        return
    if compressed or item is None or not size:
        return
    expected = int(np.prod(size, dtype=np.int64)) * channels * item
    found = os.path.getsize(data_path)
    if found < expected:
        raise DataError(
            f"{path}: the data file {data_file} is truncated: it needs {expected} bytes, "
            f"found {found}."
        )


def _to_integer_labels(array, path):
    if np.issubdtype(array.dtype, np.bool_):
        return array.astype(np.int32)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (
            array.max() > np.iinfo(np.int32).max or array.min() < np.iinfo(np.int32).min
        ):
            raise DataError(f"{path}: label values exceed the int32 range.")
        return array.astype(np.int32)
    finite = np.isfinite(array)
    if not finite.all():
        raise DataError(
            f"{path}: the mask holds {int((~finite).sum())} NaN or infinite values; "
            "expected whole-number class values."
        )
    fraction = array != np.round(array)
    if fraction.any():
        examples = np.unique(array[fraction])[:5].tolist()
        raise DataError(
            f"{path}: the mask holds non-integer values (e.g. {examples}); "
            "expected whole-number class values."
        )
    return array.astype(np.int32)


# ----------------------------------------------------------------------------- writing


def _classes_to_stored(label, label_values):
    if isinstance(label_values, dict):
        stored_of = {int(c): int(s) for s, c in label_values.items()}
    else:
        stored_of = {c: int(s) for c, s in enumerate(label_values)}
    classes = np.unique(label)
    missing = [int(c) for c in classes if int(c) not in stored_of]
    if missing:
        raise ValueError(
            f"`label_values` has no stored value for classes {missing}. "
            f"Received: label_values={label_values}"
        )
    out = np.zeros_like(label)
    for c in classes:
        out[label == c] = stored_of[int(c)]
    if out.size and out.min() < 0:
        raise ValueError(
            f"`label_values` must be non-negative. Received: label_values={label_values}"
        )
    return out


def _write(path, array, geometry, reference, is_label):
    path = pathlib.Path(path)
    ext = split_extension(path)[1]
    if ext not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"`path` must end with one of {list(SUPPORTED_EXTENSIONS)}. Received: path={path}"
        )
    if reference is not None:
        ref_shape, ref_geometry = read_info(reference)
        if tuple(ref_shape[:3]) != tuple(array.shape[:3]):
            raise ValueError(
                f"The array to write has spatial shape {tuple(array.shape[:3])} but the "
                f"reference {reference} has {tuple(ref_shape[:3])}."
            )
        geometry = ref_geometry if geometry is None else geometry
    if ext in PLANAR_EXTENSIONS:
        payload = _planar_payload(path, ext, array, is_label)

        def write(target):
            ok, encoded = cv2.imencode(ext, payload)
            if not ok:
                raise ValueError(f"OpenCV could not encode {path} as {ext}.")
            encoded.tofile(str(target))

    else:
        image = _to_sitk(array, geometry or Geometry.identity(3), ext, path)
        compress = ext in (".nii.gz", ".mha", ".nrrd")

        def write(target):
            sitk.WriteImage(image, str(target), compress)

    with atomic_files(path) as target:
        write(target)
    return str(path)


def _planar_payload(path, ext, array, is_label):
    if is_label and ext not in LABEL_PLANAR_EXTENSIONS:
        raise ValueError(
            f"Label maps must be written to a lossless format: `path` must end with one of "
            f"{list(VOLUME_EXTENSIONS + LABEL_PLANAR_EXTENSIONS)}. Received: path={path}"
        )
    if array.shape[0] != 1:
        raise ValueError(
            f"{ext} files hold one 2-D slice, the array has {array.shape[0]} slices; "
            f"write a volume format instead. Received: path={path}"
        )
    channels = array.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"{ext} files hold 1, 3 or 4 channels, the array has {channels}.")
    payload = array[0]
    if not np.issubdtype(payload.dtype, np.integer):
        if ext in (".tif", ".tiff"):
            payload = payload.astype(np.float32)
        elif (
            np.all(np.isfinite(payload))
            and np.array_equal(payload, np.round(payload))
            and (payload.min() >= 0 and payload.max() <= 65535)
        ):
            payload = payload.astype(np.uint8 if payload.max() <= 255 else np.uint16)
        else:
            raise ValueError(
                f"{ext} files store integers 0..255 (or 0..65535); the image holds other "
                f"values. Rescale it, or write .tif or a volume format. Received: path={path}"
            )
    if payload.dtype == np.uint16 and ext in (".jpg", ".jpeg", ".bmp", ".gif"):
        raise ValueError(
            f"{ext} files store 8-bit values; the array needs 16 bits. Received: path={path}"
        )
    if channels == 3:
        payload = payload[..., ::-1]
    elif channels == 4:
        payload = payload[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(payload[..., 0] if channels == 1 else payload)


def _to_sitk(array, geometry, ext, path):
    depth, channels = array.shape[0], array.shape[-1]
    if geometry.ndim == 2:
        if depth != 1:
            raise ValueError(
                f"A 2-D geometry needs one slice; the array has {depth}. Received: path={path}"
            )
        array = array[0]
    if channels == 1:
        image = sitk.GetImageFromArray(np.ascontiguousarray(array[..., 0]))
    elif ext in (".nii", ".nii.gz") and geometry.ndim == 3:
        volumes = [
            sitk.GetImageFromArray(np.ascontiguousarray(array[..., c])) for c in range(channels)
        ]
        for volume in volumes:
            _apply_geometry(volume, geometry)
        return sitk.JoinSeries(volumes)
    else:
        image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=True)
    _apply_geometry(image, geometry)
    return image


def _apply_geometry(image, geometry):
    if image.GetDimension() != geometry.ndim:
        raise ValueError(
            f"`geometry` is {geometry.ndim}-D but the image to write is {image.GetDimension()}-D."
        )
    image.SetSpacing([float(s) for s in geometry.spacing])
    image.SetOrigin([float(o) for o in geometry.origin])
    image.SetDirection([float(d) for d in geometry.direction])


def _fmt(values):
    return "(" + ", ".join(f"{float(v):.6g}" for v in values) + ")"
