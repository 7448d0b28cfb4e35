"""The plain folder layout: an image folder and a mask folder, paired by file name.

::

    root/
      images/   (or image/)             21_training.tif, 22_training.tif, ...
      masks/    (or mask/, label/, labels/)  21_manual1.gif, 22_manual1.gif, ...
      roi/      (or rois/, optional)    regions of interest, same pairing
      other/                            ignored, with a note in the report

Images and masks pair by file stem, or by the case id that ``id_pattern`` extracts from
their names. Any extension of :data:`kerasseg.data.io.SUPPORTED_EXTENSIONS` is read, 2-D
images and volumes alike.
"""

import re
import warnings

import numpy as np

from kerasseg.data import io
from kerasseg.data.errors import DataError
from kerasseg.data.sources import (
    MISSING_LABEL_CHOICES,
    CaseFiles,
    Scan,
    check_choice,
    find_subfolder,
    is_hidden,
    natural_key,
    preview,
)

IMAGE_FOLDERS = ("image", "images")
LABEL_FOLDERS = ("label", "labels", "mask", "masks")
ROI_FOLDERS = ("roi", "rois")


def scan(
    root, on_missing_label="error", id_pattern=None, image_dir=None, label_dir=None, roi_dir=None
):
    """List the cases of a folder-layout data set.

    Args:
        root: the data set folder (:class:`pathlib.Path`).
        on_missing_label: what to do with images that have no mask: "error" (default),
            "skip" (leave them out, with a warning naming them) or "keep" (load them
            without a label, e.g. to predict).
        id_pattern: optional regular expression with one group (or a group named
            ``id``), searched in each file name to give the case id, for when image and
            mask names differ: ``r"^(\\d+)_"`` pairs ``21_training.tif`` with
            ``21_manual1.gif``.
        image_dir, label_dir, roi_dir: folder names (relative to ``root``) or paths that
            replace the usual ``images/``, ``masks/`` and ``roi/``.

    Returns:
        A :class:`~kerasseg.data.sources.Scan` with ``class_names`` None (the data set
        decides them) and the channel names and spatial dims of the first readable image.

    Raises:
        ValueError: bad option value.
        DataError: no image folder or no images, ambiguous folders, file names that
            ``id_pattern`` does not match, two files with one case id, images without
            masks (with ``on_missing_label="error"``).

    Example:
        >>> found = scan(pathlib.Path("isbi2012_membrane/train"))  # doctest: +SKIP
        >>> len(found.cases)  # doctest: +SKIP
        30
    """
    check_choice("on_missing_label", on_missing_label, MISSING_LABEL_CHOICES)
    pattern = _compile_id_pattern(id_pattern)
    image_folder = _pick_folder(root, image_dir, IMAGE_FOLDERS, "image_dir")
    if image_folder is None:
        raise DataError(
            f"{root}: no image folder. The folder layout expects an image/ or images/ "
            "subfolder (or pass image_dir=...)."
        )
    label_folder = _pick_folder(root, label_dir, LABEL_FOLDERS, "label_dir")
    roi_folder = _pick_folder(root, roi_dir, ROI_FOLDERS, "roi_dir")
    notes = []
    used = {p.resolve() for p in (image_folder, label_folder, roi_folder) if p is not None}
    ignored = sorted(
        p.name + "/"
        for p in root.iterdir()
        if p.is_dir() and not is_hidden(p.name) and p.resolve() not in used
    )
    if ignored:
        notes.append(f"ignored subfolders: {preview(ignored)}")

    images = _index(image_folder, pattern, id_pattern, notes)
    if not images:
        raise DataError(
            f"{image_folder}: no image files. Expected files ending with one of "
            f"{list(io.SUPPORTED_EXTENSIONS)}."
        )
    labels = _index(label_folder, pattern, id_pattern, notes) if label_folder else {}
    rois = _index(roi_folder, pattern, id_pattern, notes) if roi_folder else {}

    ids = sorted(images, key=natural_key)
    missing = [i for i in ids if i not in labels]
    if missing:
        ids = _handle_missing(
            ids, missing, images, image_folder, label_folder, on_missing_label, id_pattern, notes
        )
    orphans = sorted(set(labels) - set(images), key=natural_key)
    if orphans:
        notes.append(
            f"{len(orphans)} mask(s) without an image ignored: "
            f"{preview(labels[i].name for i in orphans)}"
        )
    if roi_folder is not None:
        no_roi = [i for i in ids if i not in rois]
        if no_roi:
            notes.append(f"{len(no_roi)} case(s) have no region of interest in {roi_folder.name}/")
    cases = [
        CaseFiles(
            case_id=i,
            image_paths=(str(images[i]),),
            label_path=str(labels[i]) if i in labels else None,
            roi_path=str(rois[i]) if i in rois else None,
        )
        for i in ids
    ]
    channels, spatial_dims = _probe(images[i] for i in ids)
    parts = [f"images in {image_folder.name}/"]
    if label_folder is not None:
        parts.append(f"masks in {label_folder.name}/")
    if roi_folder is not None:
        parts.append(f"regions of interest in {roi_folder.name}/")
    if id_pattern is not None:
        parts.append(f"case ids from id_pattern {id_pattern!r}")
    return Scan(
        format="folder",
        layout=f"folder of {spatial_dims}-D images: " + ", ".join(parts),
        cases=cases,
        modalities=default_channel_names(channels) if channels else None,
        spatial_dims=spatial_dims,
        notes=notes,
    )


def default_channel_names(channels):
    """Channel names of a plain image: ``["gray"]``, ``["red", "green", "blue"]``, ``channel_i``."""
    if channels == 1:
        return ["gray"]
    if channels == 3:
        return ["red", "green", "blue"]
    return [f"channel_{i}" for i in range(channels)]


def infer_classes(label_paths):
    """Decide the classes of masks that come with no declared classes.

    The values of every mask are gathered (reading stops early for a 0/255 set): values
    within {0, 1} or {0, 255} make a binary set (``["background", "foreground"]``; 255 is
    read as 1); otherwise they must be the consecutive class indices ``0..K-1``. Passing
    ``class_names`` to :func:`~kerasseg.data.load_dataset` skips this reading.

    Args:
        label_paths: mask files.

    Returns:
        ``(class_names, note)``: the names, and a line for the report saying how they
        were found.

    Raises:
        DataError: values that are not consecutive class indices; the message asks for
            ``label_values``.
    """
    label_paths = list(label_paths)
    found, first_seen = set(), {}
    for path in label_paths:
        try:
            values = np.unique(io.read_label(path)[0]).tolist()
        except (DataError, OSError):
            continue  # reported when the case is loaded or validated
        found.update(values)
        for value in values:
            first_seen.setdefault(value, path)
        if found == {0, 255}:
            break  # 255 is no class index: a 0/255 binary set, no need to read further
    if found <= {0, 1} or found <= {0, 255}:
        values = sorted(found) if found - {0} else "all 0"
        return (
            ["background", "foreground"],
            f"no class names given: binary masks (values {values}) read as background 0 and "
            "foreground 1; pass class_names=[...] to name them",
        )
    if min(found) < 0 or found != set(range(max(found) + 1)):
        raise DataError(
            f"The masks hold the values {preview(sorted(found), 12)} (e.g. {max(found)} in "
            f"{first_seen[max(found)]}), which are not consecutive class indices 0..K-1. "
            "Pass class_names=[...] and label_values=[stored value of "
            "class 0, of class 1, ...] (or a dict {stored_value: class_index})."
        )
    count = max(found) + 1
    names = ["background"] + [f"class_{i}" for i in range(1, count)]
    return names, (
        f"no class names given: {count} classes found in the mask values 0..{count - 1}; "
        "pass class_names=[...] to name them"
    )


def _compile_id_pattern(id_pattern):
    if id_pattern is None:
        return None
    try:
        pattern = re.compile(id_pattern)
    except (re.error, TypeError) as error:
        raise ValueError(
            "`id_pattern` must be a regular expression. "
            f"Received: id_pattern={id_pattern!r} ({error})"
        ) from None
    if "id" not in pattern.groupindex and pattern.groups != 1:
        raise ValueError(
            "`id_pattern` must have exactly one group, or a group named `id`, that captures "
            f"the case id. Received: id_pattern={id_pattern!r} ({pattern.groups} groups)"
        )
    return pattern


def _pick_folder(root, given, names, option):
    if given is not None:
        folder = root / given
        if not folder.is_dir():
            raise DataError(
                f"`{option}` must name a folder. "
                f"Received: {option}={given!r} ({folder} is not a folder)"
            )
        return folder
    found = find_subfolder(root, names)
    if len(found) > 1:
        raise DataError(
            f"{root}: several candidate folders {[p.name for p in found]}; keep one, or "
            f"choose with {option}=..."
        )
    return found[0] if found else None


def _index(folder, pattern, id_pattern, notes):
    """Map case id -> file for the readable files of ``folder``."""
    files, unsupported = [], []
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if not path.is_file() or is_hidden(path.name):
            continue
        (files if io.is_supported(path) else unsupported).append(path)
    if unsupported:
        notes.append(
            f"ignored {len(unsupported)} file(s) of unsupported type in {folder.name}/: "
            + preview(p.name for p in unsupported)
        )
    index, unmatched = {}, []
    for path in files:
        if pattern is None:
            case_id = io.split_extension(path)[0]
        else:
            match = pattern.search(path.name)
            if match is None:
                unmatched.append(path.name)
                continue
            case_id = match.group("id") if "id" in pattern.groupindex else match.group(1)
        if case_id in index:
            raise DataError(
                f"{folder}: two files give the case id {case_id!r}: {index[case_id].name} and "
                f"{path.name}. Keep one, or set id_pattern to tell them apart."
            )
        index[case_id] = path
    if unmatched:
        raise DataError(
            f"{folder}: id_pattern {id_pattern!r} does not match {len(unmatched)} file name(s): "
            f"{preview(unmatched)}."
        )
    return index


def _handle_missing(
    ids, missing, images, image_folder, label_folder, on_missing_label, id_pattern, notes
):
    names = preview(images[i].name for i in missing)
    where = (
        f"in {label_folder}"
        if label_folder is not None
        else ("(no label/, labels/, mask/ or masks/ folder was found)")
    )
    if on_missing_label == "error":
        how = "the same case id from id_pattern" if id_pattern else "the same file name stem"
        raise DataError(
            f"{len(missing)} image(s) in {image_folder} have no mask {where}: {names}. "
            f"Expected a mask with {how}. Pass on_missing_label='skip' to leave them out, "
            "or 'keep' to load them without masks."
        )
    if on_missing_label == "skip":
        warnings.warn(
            f"Skipped {len(missing)} image(s) in {image_folder} without a mask: {names}",
            stacklevel=5,
        )
        notes.append(f"skipped {len(missing)} image(s) without a mask: {names}")
        return [i for i in ids if i not in set(missing)]
    notes.append(f"{len(missing)} image(s) without a mask {where} kept unlabelled: {names}")
    return ids


def _probe(paths):
    """Channels and spatial dims of the first readable image (None, 2 if none reads)."""
    for path in paths:
        try:
            shape, geometry = io.read_info(path)
        except (DataError, OSError):
            continue  # reported when the case is loaded or validated
        dims = 3 if geometry.ndim == 3 and shape[0] > 1 else 2
        return shape[-1], dims
    return None, 2
