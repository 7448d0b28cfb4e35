"""The Medical Segmentation Decathlon layout.

::

    root/
      dataset.json   "labels" {"0": "background", ...}, "modality" {"0": "MRI", ...},
                     "training" [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}],
                     "test" ["./imagesTs/y.nii.gz"]
      imagesTr/  labelsTr/  imagesTs/

Several modalities are stored as one 4-D NIfTI whose 4th dimension is the modality; the
reader turns it into channels. Folders converted for nnU-Net, with one file per modality
(``x_0000.nii.gz``, ``x_0001.nii.gz``) and a ``dataset.json`` that names
``channel_names`` and maps names to labels, are read too. macOS ``._*`` files are ignored.
"""

import json
import os
import re
import warnings

from kerasseg.data import io
from kerasseg.data.errors import DataError
from kerasseg.data.sources import (
    MISSING_LABEL_CHOICES,
    SUBSET_CHOICES,
    CaseFiles,
    Scan,
    check_choice,
    is_hidden,
    natural_key,
    preview,
)

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def scan(root, subset="training", on_missing_label="error"):
    """List the cases of a Decathlon data set.

    Args:
        root: the data set folder (:class:`pathlib.Path`) holding ``dataset.json``.
        subset: "training" (default: the labelled cases of ``imagesTr/``), "test" (the
            unlabelled cases of ``imagesTs/``) or "all".
        on_missing_label: for a training case whose label file is missing: "error"
            (default), "skip" (with a warning) or "keep" (unlabelled).

    Returns:
        A :class:`~kerasseg.data.sources.Scan` with the json's class names and modalities.

    Raises:
        ValueError: bad option value.
        DataError: missing or invalid ``dataset.json``, a listed image that does not
            exist, a missing label (with ``on_missing_label="error"``), duplicate case ids.

    Example:
        >>> import pathlib
        >>> from kerasseg.sample import hippocampus_path
        >>> found = scan(pathlib.Path(hippocampus_path()))
        >>> found.class_names
        ['background', 'Anterior', 'Posterior']
    """
    check_choice("subset", subset, SUBSET_CHOICES)
    check_choice("on_missing_label", on_missing_label, MISSING_LABEL_CHOICES)
    json_path = root / "dataset.json"
    if not json_path.is_file():
        raise DataError(
            f"{root}: no dataset.json. The decathlon layout expects dataset.json beside "
            "imagesTr/ and labelsTr/."
        )
    meta = _read_json(json_path)
    class_names = _names(meta, ("labels",), json_path, required=True)
    modalities = _names(meta, ("modality", "channel_names"), json_path, required=False)
    notes = []
    ending = meta.get("file_ending", ".nii.gz")
    training = _training(root, meta, json_path, ending, on_missing_label, notes)
    test = _test(root, meta, json_path, ending)
    if subset == "training" and test:
        notes.append(
            f"{len(test)} test case(s) without labels not included; "
            "pass subset='test' or 'all' to load them"
        )
    if subset == "test" and training:
        notes.append(f"{len(training)} training case(s) not included (subset='test')")
    cases = (training if subset != "test" else []) + (test if subset != "training" else [])
    seen = {}
    for case in cases:
        if case.case_id in seen:
            raise DataError(
                f"{root}: two cases share the id {case.case_id!r}: {seen[case.case_id]} and "
                f"{case.image_paths[0]}."
            )
        seen[case.case_id] = case.image_paths[0]
    _note_unlisted(root, training + test, notes)
    if modalities is None:
        modalities = _probe_modalities(cases)
    for case in cases:
        if len(case.image_paths) > 1 and len(case.image_paths) != len(modalities):
            raise DataError(
                f"{root}: case {case.case_id!r} has {len(case.image_paths)} modality files but "
                f"dataset.json declares {len(modalities)} modalities {modalities}."
            )
    name = meta.get("name")
    return Scan(
        format="decathlon",
        layout=(
            f"Medical Segmentation Decathlon{f' ({name})' if name else ''}: dataset.json with "
            f"{len(training)} training case(s) in imagesTr/ + labelsTr/ and {len(test)} test "
            f"case(s); subset={subset!r}"
        ),
        cases=cases,
        class_names=class_names,
        modalities=modalities,
        spatial_dims=3,
        notes=notes,
    )


def _read_json(json_path):
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{json_path}: not valid JSON ({error}).") from None
    if not isinstance(meta, dict):
        raise DataError(
            f"{json_path}: expected a JSON object at the top level, found {type(meta).__name__}."
        )
    return meta


def _names(meta, keys, json_path, required):
    """Names indexed 0..K-1 from {"0": name} (Decathlon) or {name: 0} (nnU-Net v2)."""
    key = next((k for k in keys if k in meta), None)
    if key is None:
        if required:
            raise DataError(
                f"{json_path}: no {keys[0]!r} entry. Expected an object mapping class index to "
                'name, e.g. "labels": {"0": "background", "1": "tumour"}.'
            )
        return None
    value = meta[key]
    example = '{"0": "background", "1": "tumour"}'
    if not isinstance(value, dict) or not value:
        raise DataError(
            f"{json_path}: {key!r} must be a non-empty object such as {example}. "
            f"Received: {value!r}"
        )
    if all(str(k).strip().lstrip("-").isdigit() for k in value):
        by_index = {int(k): str(v) for k, v in value.items()}
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        by_index = {v: str(k) for k, v in value.items()}
    else:
        raise DataError(
            f"{json_path}: {key!r} must map indices to names, such as {example} (region "
            f"lists are not supported). Received: {value!r}"
        )
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(
            f"{json_path}: the indices of {key!r} must be 0..{len(by_index) - 1}. "
            f"Received: {sorted(by_index)}"
        )
    return [by_index[i] for i in range(len(by_index))]


def _resolve(root, listed, json_path, what):
    if not isinstance(listed, str) or not listed:
        raise DataError(f"{json_path}: expected a file path for {what}. Received: {listed!r}")
    return root / listed


def _image_files(path):
    """The file itself, or its per-modality files ``stem_0000.ext`` ... (nnU-Net)."""
    if path.is_file():
        return (str(path),)
    stem, ext = io.split_extension(path)
    if path.parent.is_dir():
        channels = sorted(
            p
            for p in path.parent.iterdir()
            if not is_hidden(p.name)
            and io.split_extension(p)[1] == ext
            and re.fullmatch(re.escape(stem) + r"_\d{4}", io.split_extension(p)[0])
        )
        if channels:
            return tuple(str(p) for p in channels)
    return ()


def _training(root, meta, json_path, ending, on_missing_label, notes):
    entries = meta.get("training")
    if entries is None:
        cases = _list_folder(root / "imagesTr", root / "labelsTr", ending)
    else:
        if not isinstance(entries, list):
            raise DataError(
                f"{json_path}: 'training' must be a list. Received: {type(entries).__name__}"
            )
        cases = []
        for k, entry in enumerate(entries):
            if not isinstance(entry, dict) or "image" not in entry:
                raise DataError(
                    f"{json_path}: training entry {k} must be an object with 'image' and "
                    f"'label' paths. Received: {entry!r}"
                )
            image = _resolve(root, entry["image"], json_path, f"training entry {k} 'image'")
            files = _image_files(image)
            if not files:
                raise DataError(
                    f"{json_path}: training entry {k} lists {entry['image']}, which does not "
                    f"exist ({image})."
                )
            label = entry.get("label")
            label_path = (
                _resolve(root, label, json_path, f"training entry {k} 'label'")
                if label is not None
                else None
            )
            case_id = io.split_extension(image)[0]
            cases.append(
                CaseFiles(case_id, files, str(label_path) if label_path is not None else None)
            )
    missing = [c for c in cases if c.label_path is None or not os.path.isfile(c.label_path)]
    if not missing:
        return cases
    names = preview(c.case_id for c in missing)
    if on_missing_label == "error":
        raise DataError(
            f"{root}: {len(missing)} training case(s) have no label file in labelsTr/: {names}. "
            "Pass on_missing_label='skip' to leave them out, or 'keep' to load them without labels."
        )
    if on_missing_label == "skip":
        warnings.warn(
            f"Skipped {len(missing)} training case(s) of {root} without a label file: {names}",
            stacklevel=5,
        )
        notes.append(f"skipped {len(missing)} training case(s) without a label file: {names}")
        dropped = {c.case_id for c in missing}
        return [c for c in cases if c.case_id not in dropped]
    notes.append(f"{len(missing)} training case(s) without a label file kept unlabelled: {names}")
    dropped = {c.case_id for c in missing}
    return [c._replace(label_path=None) if c.case_id in dropped else c for c in cases]


def _test(root, meta, json_path, ending):
    entries = meta.get("test")
    if entries is None:
        return _list_folder(root / "imagesTs", None, ending) if (root / "imagesTs").is_dir() else []
    if not isinstance(entries, list):
        raise DataError(f"{json_path}: 'test' must be a list. Received: {type(entries).__name__}")
    cases = []
    for k, entry in enumerate(entries):
        listed = entry.get("image") if isinstance(entry, dict) else entry
        image = _resolve(root, listed, json_path, f"test entry {k}")
        files = _image_files(image)
        if not files:
            raise DataError(
                f"{json_path}: test entry {k} lists {listed}, which does not exist ({image})."
            )
        cases.append(CaseFiles(io.split_extension(image)[0], files, None))
    return cases


def _list_folder(images_dir, labels_dir, ending):
    """Cases of a folder without a json listing, one file or one file per modality each."""
    if not images_dir.is_dir():
        raise DataError(
            f"{images_dir.parent}: dataset.json lists no cases and there is no "
            f"{images_dir.name}/ folder."
        )
    groups = {}
    for path in sorted(images_dir.iterdir(), key=lambda p: natural_key(p.name)):
        stem, ext = io.split_extension(path)
        if is_hidden(path.name) or not path.is_file() or ext != ending:
            continue
        match = _CHANNEL_FILE.match(stem)
        groups.setdefault(match.group("case") if match else stem, []).append(str(path))
    cases = []
    for case_id in sorted(groups, key=natural_key):
        label = labels_dir / f"{case_id}{ending}" if labels_dir is not None else None
        cases.append(
            CaseFiles(case_id, tuple(groups[case_id]), str(label) if label is not None else None)
        )
    return cases


def _note_unlisted(root, cases, notes):
    listed = {p for c in cases for p in c.image_paths} | {
        c.label_path for c in cases if c.label_path
    }
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        path = root / folder
        if not path.is_dir():
            continue
        hidden = unlisted = 0
        for file in path.iterdir():
            if is_hidden(file.name):
                hidden += file.name.startswith("._")
            elif file.is_file() and str(file) not in listed:
                unlisted += 1
        if hidden:
            notes.append(f"ignored {hidden} macOS '._' file(s) in {folder}/")
        if unlisted and folder != "imagesTs":
            notes.append(
                f"{unlisted} file(s) in {folder}/ are not listed in dataset.json and were ignored"
            )


def _probe_modalities(cases):
    for case in cases:
        try:
            shape, _ = io.read_info(case.image_paths[0])
        except (DataError, OSError):
            continue
        channels = shape[-1] * len(case.image_paths)
        return ["image"] if channels == 1 else [f"channel_{i}" for i in range(channels)]
    return ["image"]
