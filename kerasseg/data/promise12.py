"""The PROMISE12 layout: prostate MRI as MetaImage files, in any subfolders.

::

    root/
      TrainingData_Part1/  Case00.mhd Case00.raw Case00_segmentation.mhd Case00_segmentation.raw ...
      TrainingData_Part2/  ...
      TestData/            Case00.mhd Case00.raw ...   (no masks)

A case is a ``CaseNN.mhd`` (or ``.mha``) file; its mask is ``CaseNN_segmentation.mhd`` in
the same folder. Cases without a mask are the test cases. The challenge numbers its test
cases from ``Case00`` again: when two folders hold the same name, the case ids carry the
folder (``TestData/Case00``).
"""

import re

from kerasseg.data.sources import (
    SUBSET_CHOICES,
    CaseFiles,
    Scan,
    check_choice,
    natural_key,
    preview,
    walk_files,
)
from kerasseg.data.errors import DataError

CLASS_NAMES = ["background", "prostate"]
MODALITIES = ["T2"]
_IMAGE = re.compile(r"^(?P<case>case\d+)\.(?P<ext>mhd|mha)$", re.IGNORECASE)
_MASK = re.compile(r"^(?P<case>case\d+)_segmentation\.(?P<ext>mhd|mha)$", re.IGNORECASE)


def scan(root, subset="training"):
    """List the cases of a PROMISE12 data set.

    Args:
        root: the data set folder (:class:`pathlib.Path`).
        subset: "training" (default: the cases with a mask), "test" (the cases without
            one) or "all".

    Returns:
        A :class:`~kerasseg.data.sources.Scan`, class names ``["background", "prostate"]``.

    Raises:
        ValueError: bad ``subset``.
        DataError: no ``CaseNN.mhd`` file under ``root``.

    Example:
        >>> found = scan(pathlib.Path("promise12"), subset="all")  # doctest: +SKIP
        >>> [c.case_id for c in found.cases][:2]  # doctest: +SKIP
        ['Case00', 'Case01']
    """
    check_choice("subset", subset, SUBSET_CHOICES)
    images, masks, notes = {}, {}, []
    other = 0
    for path in walk_files(root):
        image, mask = _IMAGE.match(path.name), _MASK.match(path.name)
        if image:
            images[(path.parent, image.group("case"))] = path
        elif mask:
            masks[(path.parent, mask.group("case"))] = path
        elif path.suffix.lower() in (".mhd", ".mha"):
            other += 1
    if not images:
        raise DataError(
            f"{root}: no PROMISE12 case. The promise12 layout expects CaseNN.mhd files "
            "(with CaseNN_segmentation.mhd masks) in the folder or its subfolders."
        )
    if other:
        notes.append(
            f"ignored {other} MetaImage file(s) not named CaseNN.mhd or CaseNN_segmentation.mhd"
        )
    orphans = sorted(str(masks[k].relative_to(root)) for k in masks if k not in images)
    if orphans:
        notes.append(f"{len(orphans)} mask(s) without an image ignored: {preview(orphans)}")
    labelled = sum(key in masks for key in images)
    unlabelled = len(images) - labelled
    kept = [key for key in images if subset == "all" or (subset == "training") == (key in masks)]
    names = [name for _, name in kept]
    duplicated = {n for n in names if names.count(n) > 1}
    cases = []
    for folder, name in kept:
        relative = folder.relative_to(root).as_posix()
        case_id = f"{relative}/{name}" if name in duplicated and relative != "." else name
        label = masks.get((folder, name))
        cases.append(
            CaseFiles(case_id, (str(images[(folder, name)]),), str(label) if label else None)
        )
    if subset == "training" and unlabelled:
        notes.append(
            f"{unlabelled} test case(s) without a mask not included; "
            "pass subset='test' or 'all' to load them"
        )
    if subset == "test" and labelled:
        notes.append(f"{labelled} training case(s) not included (subset='test')")
    cases.sort(key=lambda c: natural_key(c.case_id))
    return Scan(
        format="promise12",
        layout=(
            f"PROMISE12 MetaImage: {labelled} case(s) with a CaseNN_segmentation mask, "
            f"{unlabelled} without; subset={subset!r}"
        ),
        cases=cases,
        class_names=list(CLASS_NAMES),
        modalities=list(MODALITIES),
        spatial_dims=3,
        notes=notes,
    )
