"""Data sets as lists of cases: :func:`load_dataset`, :class:`CaseDataset`, :class:`Case`.

:func:`load_dataset` recognises the layout (plain 2-D folders, Medical Segmentation
Decathlon, PROMISE12), lists the cases and checks what is cheap to check (files, pairing,
``dataset.json``). Voxels are read by :meth:`Case.load`, which checks the contents;
:func:`validate` loads every case up front so that no bad file turns up in the middle of a
training epoch.
"""

import dataclasses
import pathlib
import warnings
from typing import Optional, Tuple

import numpy as np

from kerasseg.data import io, sources
from kerasseg.data.errors import DataError
from kerasseg.data.folder import default_channel_names, infer_classes
from kerasseg.data.types import CaseData

_BINARY_STORED = 255


@dataclasses.dataclass(frozen=True)
class Case:
    """One case of a data set: its files, and :meth:`load` to read them.

    Attributes:
        case_id: the case's name, unique in its data set (e.g. ``"hippocampus_001"``).
        image_paths: tuple of image files; several when each modality is its own file,
            stacked as channels in this order.
        label_path: the mask file, or None for an unlabelled case.
        roi_path: a region-of-interest file, or None.
        class_names: the data set's classes (index = class value in the loaded label).
        label_values: tuple of ``(stored_value, class_index)`` pairs mapping what the mask
            file stores to classes, or None when the file stores class indices (a 2-class
            mask stored as 0/255 is then read as 0/1).
        channels: expected number of channels, or None to accept any.
        geometry_tolerance: allowed difference between image and mask geometry (relative
            for spacing, in voxels for origin, absolute for direction cosines).

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> case = load_dataset(hippocampus_path())[0]
        >>> image, label, geometry, roi = case.load()
        >>> image.shape, label.dtype
        ((35, 51, 35, 1), dtype('int32'))
    """

    case_id: str
    image_paths: Tuple[str, ...]
    label_path: Optional[str] = None
    roi_path: Optional[str] = None
    class_names: Optional[Tuple[str, ...]] = None
    label_values: Optional[Tuple[Tuple[int, int], ...]] = None
    channels: Optional[int] = None
    geometry_tolerance: float = 1e-3

    @property
    def has_label(self):
        """Whether the case has a mask file."""
        return self.label_path is not None

    @property
    def num_classes(self):
        """Number of classes, or None when the case does not know them."""
        return len(self.class_names) if self.class_names is not None else None

    def load(self):
        """Read the case's image, mask and region of interest, checking their contents.

        Returns:
            :class:`~kerasseg.data.types.CaseData` ``(image, label, geometry, roi)``:
            float32 image ``(D, H, W, C)``, int32 label ``(D, H, W)`` of class indices (or
            None), the image's geometry, boolean roi ``(D, H, W)`` (or None).

        Raises:
            FileNotFoundError: a file of the case no longer exists.
            DataError: unreadable or truncated file, NaN or infinite intensities, wrong
                channel count, modality files or mask whose shape or geometry differ from
                the image's, mask values outside the declared classes. The message names
                the file and what was expected.

        Example:
            >>> from kerasseg.sample import hippocampus_path
            >>> case = load_dataset(hippocampus_path())["hippocampus_001"]
            >>> data = case.load()
            >>> data.image.shape, data.geometry.spacing
            ((35, 51, 35, 1), (1.0, 1.0, 1.0))
        """
        image, geometry = self._load_image()
        label = self._load_label(image, geometry) if self.label_path is not None else None
        roi = self._load_roi(image, geometry) if self.roi_path is not None else None
        return CaseData(image=image, label=label, geometry=geometry, roi=roi)

    def _load_image(self):
        parts, first_geometry = [], None
        for path in self.image_paths:
            image, geometry = io.read_image(path)  # also refuses NaN and infinite values
            if parts:
                self._check_alike(
                    path,
                    image.shape[:3],
                    geometry,
                    self.image_paths[0],
                    parts[0].shape[:3],
                    first_geometry,
                    "modality file",
                )
            else:
                first_geometry = geometry
            parts.append(image)
        image = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        if self.channels is not None and image.shape[-1] != self.channels:
            image = self._fit_channels(image)
        return image, first_geometry

    def _fit_channels(self, image):
        found = image.shape[-1]
        if self.channels == 1 and all(
            np.array_equal(image[..., 0], image[..., c]) for c in range(1, found)
        ):
            return image[..., :1]  # grey stored as RGB
        files = self.image_paths[0] if len(self.image_paths) == 1 else list(self.image_paths)
        kind = " (RGB colour)" if found == 3 else ""
        raise DataError(
            f"{files}: expected {self.channels} channel(s), found {found}{kind}. Every case of "
            "a data set must have the same channels (modalities); pass channels=... to "
            "declare them, or convert the file."
        )

    def _load_label(self, image, geometry):
        stored, label_geometry = io.read_label(self.label_path)
        self._check_alike(
            self.label_path,
            stored.shape,
            label_geometry,
            self.image_paths[0],
            image.shape[:3],
            geometry,
            "mask",
        )
        return self._to_classes(stored)

    def _load_roi(self, image, geometry):
        stored, roi_geometry = io.read_label(self.roi_path)
        self._check_alike(
            self.roi_path,
            stored.shape,
            roi_geometry,
            self.image_paths[0],
            image.shape[:3],
            geometry,
            "region of interest",
        )
        return stored != 0

    def _check_alike(self, path, shape, geometry, image_path, image_shape, image_geometry, what):
        if tuple(shape) != tuple(image_shape):
            raise DataError(
                f"{path}: the {what} has shape {tuple(shape)} (D, H, W) but its image "
                f"{image_path} has {tuple(image_shape)}; expected the same shape."
            )
        if geometry.ndim == image_geometry.ndim:
            difference = io.geometry_difference(geometry, image_geometry, self.geometry_tolerance)
            if difference:
                raise DataError(
                    f"{path}: the {what}'s geometry differs from its image {image_path} "
                    f"({difference}; {what} vs image), beyond the tolerance "
                    f"{self.geometry_tolerance}. Expected the same spacing, origin and direction."
                )

    def _to_classes(self, stored):
        values = np.unique(stored)
        hint = (
            " (JPEG is lossy and changes mask values: store masks as PNG)"
            if io.split_extension(self.label_path)[1] in (".jpg", ".jpeg")
            else ""
        )
        if self.label_values is not None:
            keys = np.array([s for s, _ in self.label_values], dtype=np.int64)
            classes = np.array([c for _, c in self.label_values], dtype=np.int32)
            unexpected = np.setdiff1d(values, keys)
            if unexpected.size:
                raise DataError(
                    f"{self.label_path}: the mask holds the values {_short(unexpected)}, which "
                    f"are not in label_values (declared stored values: {keys.tolist()}){hint}."
                )
            order = np.argsort(keys)
            return classes[order][np.searchsorted(keys[order], stored)]
        count = self.num_classes
        if count is None:
            return stored
        if count == 2 and values.size and set(values.tolist()) <= {0, _BINARY_STORED}:
            return (stored == _BINARY_STORED).astype(np.int32)
        outside = values[(values < 0) | (values >= count)]
        if outside.size:
            raise DataError(
                f"{self.label_path}: the mask holds the values {_short(outside)}, outside the "
                f"declared classes 0..{count - 1} {list(self.class_names)}{hint}. Pass "
                "label_values=... to map stored values to classes."
            )
        return stored


class CaseDataset:
    """The cases of a data set and what is known about them; made by :func:`load_dataset`.

    Indexing gives a :class:`Case` (``ds[0]``, ``ds["hippocampus_001"]``); a slice or
    :meth:`subset` gives a smaller :class:`CaseDataset` with the same classes, which is how
    to split it.

    Attributes:
        format: "folder", "decathlon" or "promise12".
        root: the data set folder (str).
        cases: tuple of :class:`Case`.
        class_names: list of class names, index = class value.
        num_classes: ``len(class_names)``.
        modalities: list of channel names (e.g. ``["MRI"]``, ``["red", "green", "blue"]``).
        num_channels: ``len(modalities)``.
        spatial_dims: 2 or 3.
        layout: one line describing the layout found.
        notes: list of remarks (ignored folders, skipped files, inferred classes, ...).

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> ds = load_dataset(hippocampus_path())
        >>> len(ds), ds.num_classes, ds.spatial_dims
        (52, 3, 3)
        >>> train, val = ds[:42], ds[42:]
        >>> len(train), len(val)
        (42, 10)
    """

    def __init__(
        self, cases, *, format, root, class_names, modalities, spatial_dims, layout="", notes=()
    ):
        self.cases = tuple(cases)
        self.format = format
        self.root = str(root)
        self.class_names = list(class_names)
        self.modalities = list(modalities)
        self.spatial_dims = int(spatial_dims)
        self.layout = layout
        self.notes = list(notes)
        self._index = {case.case_id: i for i, case in enumerate(self.cases)}

    @property
    def num_classes(self):
        """Number of classes, background included."""
        return len(self.class_names)

    @property
    def num_channels(self):
        """Number of image channels (modalities)."""
        return len(self.modalities)

    @property
    def case_ids(self):
        """List of the case ids, in order."""
        return [case.case_id for case in self.cases]

    @property
    def has_labels(self):
        """Whether every case has a mask (and there is at least one case)."""
        return bool(self.cases) and all(case.has_label for case in self.cases)

    def __len__(self):
        return len(self.cases)

    def __iter__(self):
        return iter(self.cases)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._derive(self.cases[key])
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(
                    f"No case {key!r} in {self.root}; case ids look like {self.case_ids[:3]}"
                )
            return self.cases[self._index[key]]
        return self.cases[key]

    def subset(self, keys):
        """Return a data set holding the given cases, in the given order.

        Args:
            keys: iterable of indices or case ids.

        Returns:
            :class:`CaseDataset` with the same classes, modalities and notes.

        Raises:
            KeyError / IndexError: an unknown case id or index.

        Example:
            >>> from kerasseg.sample import hippocampus_path
            >>> ds = load_dataset(hippocampus_path())
            >>> ds.subset(["hippocampus_008", 0]).case_ids
            ['hippocampus_008', 'hippocampus_001']
        """
        return self._derive([self[k] for k in keys])

    def cases_with_labels(self):
        """Return the cases that have a mask, as a :class:`CaseDataset`."""
        return self._derive([c for c in self.cases if c.has_label])

    def cases_without_labels(self):
        """Return the cases without a mask (e.g. test cases), as a :class:`CaseDataset`."""
        return self._derive([c for c in self.cases if not c.has_label])

    def validate(self, on_error="raise"):
        """Load every case and check it; see :func:`validate`."""
        return _validate(self, on_error)

    def describe(self):
        """Return a text report: layout, counts, channels, classes and notes.

        Returns:
            A multi-line string.

        Example:
            >>> from kerasseg.sample import hippocampus_path
            >>> print(load_dataset(hippocampus_path()).describe())
            Data set at .../hippocampus
              format: decathlon (Medical Segmentation Decathlon (Hippocampus): dataset.json ...)
              cases: 52 (52 with labels, 0 without)
              images: 3-D, 1 channel(s) ['MRI']
              classes (3): 0 background, 1 Anterior, 2 Posterior
        """
        labelled = sum(case.has_label for case in self.cases)
        classes = ", ".join(f"{i} {name}" for i, name in enumerate(self.class_names))
        lines = [
            f"Data set at {self.root}",
            (
                f"  format: {self.format} ({self.layout})"
                if self.layout
                else f"  format: {self.format}"
            ),
            f"  cases: {len(self)} ({labelled} with labels, {len(self) - labelled} without)",
            f"  images: {self.spatial_dims}-D, {self.num_channels} channel(s) {self.modalities}",
            f"  classes ({self.num_classes}): {classes}",
        ]
        if self.notes:
            lines.append("  notes:")
            lines.extend(f"    - {note}" for note in self.notes)
        return "\n".join(lines)

    @property
    def report(self):
        """The text of :meth:`describe`."""
        return self.describe()

    def __repr__(self):
        labelled = sum(case.has_label for case in self.cases)
        return (
            f"CaseDataset(format={self.format!r}, cases={len(self)}, labelled={labelled}, "
            f"class_names={self.class_names}, modalities={self.modalities}, "
            f"spatial_dims={self.spatial_dims}, root={self.root!r})"
        )

    def _derive(self, cases, notes=None):
        return CaseDataset(
            cases,
            format=self.format,
            root=self.root,
            class_names=self.class_names,
            modalities=self.modalities,
            spatial_dims=self.spatial_dims,
            layout=self.layout,
            notes=self.notes if notes is None else notes,
        )


def load_dataset(path, format="auto", **options):
    """Open a segmentation data set folder and list its cases.

    Args:
        path: the data set folder (a Decathlon ``dataset.json`` file is accepted too).
        format: "auto" (default: recognise the layout), "folder", "decathlon" or
            "promise12".
        **options: layout options.
            Every layout: ``class_names`` (list of names, index = class),
            ``label_values`` (how masks store classes: a list of stored values whose
            index is the class, e.g. ``[0, 128, 255]``, or a dict
            ``{stored_value: class_index}``), ``channels`` (expected channel count),
            ``geometry_tolerance`` (image/mask geometry tolerance, default 1e-3).
            folder: ``on_missing_label`` ("error", "skip", "keep"), ``id_pattern``,
            ``image_dir``, ``label_dir``, ``roi_dir``.
            decathlon: ``subset`` ("training", "test", "all"), ``on_missing_label``.
            promise12: ``subset``.

    Returns:
        :class:`CaseDataset`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown ``format``, an option the layout does not take, or a bad
            option value.
        DataError: layout not recognised, files missing or unpaired, invalid
            ``dataset.json``, no case.

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> ds = load_dataset(hippocampus_path())
        >>> ds.format, len(ds), ds.class_names
        ('decathlon', 52, ['background', 'Anterior', 'Posterior'])

        Folders of 2-D images and masks, here the ISBI 2012 EM set and DRIVE's retina
        photos (with their field-of-view masks as regions of interest):

        >>> ds = load_dataset("isbi2012_membrane/train")  # doctest: +SKIP
        >>> ds.format, len(ds), ds.class_names  # doctest: +SKIP
        ('folder', 30, ['background', 'foreground'])
        >>> ds = load_dataset("DRIVE/training", id_pattern=r"^(\\d+)_",  # doctest: +SKIP
        ...                   label_dir="1st_manual", roi_dir="mask",
        ...                   class_names=["background", "vessel"])
    """
    sources.check_choice("format", format, sources.FORMATS)
    root = pathlib.Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Data set path not found: {path}")
    if root.is_file():
        if root.name != "dataset.json" or format not in ("auto", "decathlon"):
            raise DataError(
                f"{path}: expected a data set folder (or a Decathlon dataset.json), found a file."
            )
        root = root.parent
    class_names = _check_class_names(options.get("class_names"))
    label_values = _check_label_values(options.get("label_values"))
    channels = _check_channels(options.get("channels"))
    tolerance = _check_tolerance(options.get("geometry_tolerance", 1e-3))
    fmt = format
    if format == "auto":
        # image_dir names the folder layout's image folder, which detection cannot guess
        fmt = "folder" if options.get("image_dir") is not None else sources.detect_format(root)
    found = sources.scan(root, fmt, options)
    notes = list(found.notes)
    if not found.cases:
        raise DataError(
            f"{root}: no case found in the {fmt} layout"
            + (f" ({'; '.join(notes)})" if notes else "")
            + "."
        )
    class_names = _resolve_classes(found, class_names, label_values, notes)
    modalities = found.modalities
    if channels is not None and (modalities is None or len(modalities) != channels):
        if fmt == "folder":
            modalities = default_channel_names(channels)
        else:
            modalities = [f"channel_{i}" for i in range(channels)]
    modalities = modalities or ["image"]
    cases = [
        Case(
            case_id=files.case_id,
            image_paths=tuple(files.image_paths),
            label_path=files.label_path,
            roi_path=files.roi_path,
            class_names=tuple(class_names),
            label_values=tuple(sorted(label_values.items())) if label_values is not None else None,
            channels=channels if channels is not None else len(modalities),
            geometry_tolerance=tolerance,
        )
        for files in found.cases
    ]
    return CaseDataset(
        cases,
        format=fmt,
        root=root,
        class_names=class_names,
        modalities=modalities,
        spatial_dims=found.spatial_dims,
        layout=found.layout,
        notes=notes,
    )


def validate(dataset, on_error="raise"):
    """Load every case and check it, so that bad files show up before training.

    Checks everything :meth:`Case.load` checks (unreadable or truncated files, image/mask
    shape and geometry, mask values outside the classes, NaN or infinite intensities,
    channel count against the data set's) for every case.

    Args:
        dataset: a :class:`CaseDataset`.
        on_error: "raise" (default): raise one :class:`DataError` listing every bad case;
            "skip": warn with the list and return the data set without those cases.

    Returns:
        :class:`CaseDataset`: ``dataset`` itself when every case is good, else (with
        "skip") the good cases.

    Raises:
        ValueError: bad ``on_error``.
        DataError: an empty data set, a bad case with ``on_error="raise"``, or no good
            case left.

    Example:
        >>> from kerasseg.sample import hippocampus_path
        >>> ds = load_dataset(hippocampus_path()).subset([0, 1, 2])
        >>> validate(ds, on_error="skip") is ds  # every case is good: the same data set
        True
    """
    return _validate(dataset, on_error)


def _validate(dataset, on_error):
    sources.check_choice("on_error", on_error, ("raise", "skip"))
    if len(dataset) == 0:
        raise DataError(f"{dataset.root}: the data set is empty; expected at least one case.")
    problems = []
    for case in dataset:
        try:
            case.load()
        except (DataError, OSError) as error:
            problems.append(
                (
                    case,
                    (
                        f"{type(error).__name__}: {error}"
                        if isinstance(error, OSError)
                        else str(error)
                    ),
                )
            )
    if not problems:
        return dataset
    listing = "\n".join(f"  - {case.case_id}: {message}" for case, message in problems)
    if on_error == "raise":
        raise DataError(
            f"{len(problems)} of {len(dataset)} case(s) in {dataset.root} failed "
            f"validation:\n{listing}"
        )
    warnings.warn(
        f"Skipped {len(problems)} of {len(dataset)} case(s) in {dataset.root} that failed "
        f"validation:\n{listing}",
        stacklevel=3,
    )
    bad = {case.case_id for case, _ in problems}
    kept = [case for case in dataset if case.case_id not in bad]
    if not kept:
        raise DataError(f"{dataset.root}: no case passed validation:\n{listing}")
    return dataset._derive(
        kept,
        notes=dataset.notes
        + [
            f"validate() skipped {len(bad)} case(s): "
            + sources.preview(sorted(bad, key=sources.natural_key))
        ],
    )


# ----------------------------------------------------------------------------- helpers


def _resolve_classes(found, class_names, label_values, notes):
    count = None
    if label_values is not None:
        count = max(label_values.values()) + 1
    if class_names is not None:
        if count is not None and count > len(class_names):
            raise ValueError(
                f"`label_values` maps to class {count - 1} but `class_names` has "
                f"{len(class_names)} names. Received: class_names={class_names}"
            )
        return class_names
    if found.class_names is not None and (count is None or count <= len(found.class_names)):
        return list(found.class_names)
    if count is not None:
        names = (
            ["background", "foreground"]
            if count == 2
            else ["background"] + [f"class_{i}" for i in range(1, count)]
        )
        notes.append(
            f"class names not given: {names} from label_values; pass class_names=[...] to name them"
        )
        return names
    names, note = infer_classes(c.label_path for c in found.cases if c.label_path)
    notes.append(note)
    return names


def _check_class_names(class_names):
    if class_names is None:
        return None
    if (
        isinstance(class_names, str)
        or not all(isinstance(n, str) for n in class_names)
        or len(class_names) < 2
    ):
        raise ValueError(
            "`class_names` must be a list of at least 2 names, index = class "
            f"(e.g. ['background', 'tumour']). Received: class_names={class_names!r}"
        )
    return list(class_names)


def _check_label_values(label_values):
    if label_values is None:
        return None
    message = (
        "`label_values` must be a list of distinct stored values (index = class), e.g. "
        "[0, 128, 255], or a dict {stored_value: class_index}. "
        f"Received: label_values={label_values!r}"
    )
    if isinstance(label_values, dict):
        items = list(label_values.items())
    elif isinstance(label_values, (list, tuple)):
        items = [(stored, index) for index, stored in enumerate(label_values)]
    else:
        raise ValueError(message)
    if not items or not all(_is_int(s) and _is_int(c) and c >= 0 for s, c in items):
        raise ValueError(message)
    mapping = {int(s): int(c) for s, c in items}
    if len(mapping) != len(items):
        raise ValueError(message)
    return mapping


def _check_channels(channels):
    if channels is not None and (not _is_int(channels) or channels < 1):
        raise ValueError(f"`channels` must be a positive integer. Received: channels={channels!r}")
    return None if channels is None else int(channels)


def _check_tolerance(tolerance):
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise ValueError(
            "`geometry_tolerance` must be a number >= 0. "
            f"Received: geometry_tolerance={tolerance!r}"
        )
    return float(tolerance)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _short(values, limit=10):
    values = [int(v) for v in values]
    return str(values[:limit])[:-1] + (
        f", ... ({len(values)} values)]" if len(values) > limit else "]"
    )
