"""Recognising a data set's layout and listing its cases.

Each layout has its own module, which lists files without reading voxels:
:mod:`kerasseg.data.folder` (2-D image/mask folders), :mod:`kerasseg.data.decathlon`
(Medical Segmentation Decathlon) and :mod:`kerasseg.data.promise12` (PROMISE12
MetaImage). This module holds what they share: the :class:`CaseFiles` and :class:`Scan`
records, option checks, layout detection and :func:`scan`, which dispatches.
"""

import dataclasses
import importlib
import os
import pathlib
import re
from typing import List, NamedTuple, Optional, Tuple

from kerasseg.data.errors import DataError

FORMATS = ("auto", "folder", "decathlon", "promise12")

# Options every layout accepts; they are handled by kerasseg.data.dataset.
COMMON_OPTIONS = ("class_names", "label_values", "channels", "geometry_tolerance")
LAYOUT_OPTIONS = {
    "folder": ("on_missing_label", "id_pattern", "image_dir", "label_dir", "roi_dir"),
    "decathlon": ("subset", "on_missing_label"),
    "promise12": ("subset",),
}
LAYOUTS_EXPECTED = (
    "decathlon: a dataset.json beside imagesTr/ and labelsTr/ (imagesTs/ optional); "
    "promise12: CaseNN.mhd files with CaseNN_segmentation.mhd masks, in any subfolders; "
    "folder: an image/ or images/ subfolder with a label/, labels/, mask/ or masks/ "
    "subfolder beside it"
)
MISSING_LABEL_CHOICES = ("error", "skip", "keep")
SUBSET_CHOICES = ("training", "test", "all")

_PROMISE12_IMAGE = re.compile(r"^(case\d+)\.(mhd|mha)$", re.IGNORECASE)


class CaseFiles(NamedTuple):
    """The files of one case, as a layout lists them."""

    case_id: str
    image_paths: Tuple[str, ...]
    label_path: Optional[str] = None
    roi_path: Optional[str] = None


@dataclasses.dataclass
class Scan:
    """What a layout module found: the cases and what the layout says about them.

    Attributes:
        format: "folder", "decathlon" or "promise12".
        layout: one line describing the layout found, for the report.
        cases: the :class:`CaseFiles`, in natural order of their ids.
        class_names: class names the layout declares, or None.
        modalities: channel names, or None when the layout does not say.
        spatial_dims: 2 or 3.
        notes: remarks for the report (ignored folders, skipped files, ...).
    """

    format: str
    layout: str
    cases: List[CaseFiles]
    class_names: Optional[List[str]] = None
    modalities: Optional[List[str]] = None
    spatial_dims: int = 3
    notes: List[str] = dataclasses.field(default_factory=list)


def check_choice(name, value, choices):
    """Raise ValueError unless ``value`` is one of ``choices``.

    Args:
        name: the argument's name, for the message.
        value: the value received.
        choices: the valid values.

    Raises:
        ValueError: "`name` must be one of [...]. Received: name=value".
    """
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")


def natural_key(text):
    """Sort key that orders ``"2"`` before ``"10"`` (numbers compared as numbers).

    Args:
        text: a name.

    Returns:
        A list usable as a sort key.

    Example:
        >>> sorted(["10", "2", "1"], key=natural_key)
        ['1', '2', '10']
    """
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", str(text))
    ]


def is_hidden(name):
    """Whether a file name is hidden (``.name``), which includes macOS ``._name`` files.

    Args:
        name: a file name.

    Returns:
        bool.

    Example:
        >>> is_hidden("._hippocampus_001.nii.gz")
        True
    """
    return name.startswith(".")


def find_subfolder(root, names):
    """Return the subfolders of ``root`` whose lower-case name is in ``names``.

    Args:
        root: a folder.
        names: lower-case folder names, e.g. ``("image", "images")``.

    Returns:
        Sorted list of :class:`pathlib.Path`.

    Example:
        >>> import os
        >>> os.makedirs("train/image")
        >>> os.makedirs("train/label")
        >>> find_subfolder("train", ("image", "images"))
        [PosixPath('train/image')]
    """
    return sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir() and p.name.lower() in names)


def detect_format(root):
    """Recognise the layout of the data set folder ``root``.

    ``dataset.json`` means the Decathlon layout, a ``CaseNN.mhd`` file (searched a few
    folders deep) PROMISE12, an ``image/`` or ``images/`` subfolder the folder layout.

    Args:
        root: the data set folder.

    Returns:
        "decathlon", "promise12" or "folder".

    Raises:
        DataError: no layout recognised; the message names the folder, the layouts
            expected, what the folder holds and, where a subfolder has a known layout, that
            subfolder.

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> detect_format(hippocampus_path())
        'decathlon'
    """
    root = pathlib.Path(root)
    found = _layout_of(root, deep=True)
    if found:
        return found
    entries = sorted(
        (p for p in root.iterdir() if not is_hidden(p.name)), key=lambda p: natural_key(p.name)
    )
    folders = [p.name + "/" for p in entries if p.is_dir()]
    files = [p.name for p in entries if p.is_file()]
    message = (
        f"Cannot recognise the data layout of {root}. Expected one of the layouts "
        f"[{LAYOUTS_EXPECTED}]. The folder holds: "
        f"{preview(folders + files) if entries else 'nothing'}."
    )
    candidates = [p for p in entries if p.is_dir() and _layout_of(p, deep=False)]
    if candidates:
        message += (
            f" Did you mean {candidates[0]} (a {_layout_of(candidates[0], deep=False)} layout)?"
        )
    raise DataError(message)


def scan(root, format, options):
    """List the cases of the data set at ``root`` with the given layout.

    Args:
        root: the data set folder (a :class:`pathlib.Path`).
        format: "folder", "decathlon" or "promise12".
        options: dict of layout options (:data:`LAYOUT_OPTIONS`); common options
            (:data:`COMMON_OPTIONS`) are ignored here.

    Returns:
        A :class:`Scan`.

    Raises:
        ValueError: an option that the layout does not take.
        DataError: the layout's files are missing or inconsistent.
    """
    check_choice("format", format, FORMATS[1:])
    valid = COMMON_OPTIONS + LAYOUT_OPTIONS[format]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"Option(s) {unknown} are not used by the {format} layout (at {root}). "
            f"Valid options: {sorted(valid)}."
        )
    module = importlib.import_module(f"kerasseg.data.{format}")
    layout_options = {k: v for k, v in options.items() if k in LAYOUT_OPTIONS[format]}
    return module.scan(pathlib.Path(root), **layout_options)


def walk_files(root, max_depth=None):
    """Yield the non-hidden files under ``root`` (hidden folders pruned), sorted per folder.

    Args:
        root: a folder.
        max_depth: how many folder levels below ``root`` to enter (None: all).

    Returns:
        A generator of :class:`pathlib.Path`.

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> [p.name for p in walk_files(hippocampus_path(), max_depth=0)]
        ['dataset.json', 'README.md']
        >>> len(list(walk_files(hippocampus_path())))  # with the 104 in imagesTr/, labelsTr/
        106
    """
    root = pathlib.Path(root)
    base_depth = len(root.parts)
    for folder, subfolders, files in os.walk(root):
        depth = len(pathlib.Path(folder).parts) - base_depth
        subfolders[:] = (
            sorted((d for d in subfolders if not is_hidden(d)), key=natural_key)
            if max_depth is None or depth < max_depth
            else []
        )
        for name in sorted(files, key=natural_key):
            if not is_hidden(name):
                yield pathlib.Path(folder) / name


def _layout_of(root, deep):
    if (root / "dataset.json").is_file():
        return "decathlon"
    if any(_PROMISE12_IMAGE.match(p.name) for p in walk_files(root, max_depth=3 if deep else 0)):
        return "promise12"
    if find_subfolder(root, ("image", "images")):
        return "folder"
    return None


def preview(names, limit=8):
    """Join the first ``limit`` names for a message, saying how many there are in all.

    Args:
        names: iterable of names.
        limit: how many to show.

    Returns:
        str.

    Example:
        >>> preview(["a.png", "b.png", "c.png"], limit=2)
        'a.png, b.png, ... (3 in all)'
    """
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
