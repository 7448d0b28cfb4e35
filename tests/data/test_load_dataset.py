"""load_dataset on the real hippocampus set, and the CaseDataset interface."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.data import Case, CaseDataset, load_dataset, validate


def test_hippocampus_summary(hippocampus, hippocampus_root):
    json_labels = json.loads((hippocampus_root / "dataset.json").read_text())["labels"]
    assert isinstance(hippocampus, CaseDataset)
    assert len(hippocampus) == 208
    assert hippocampus.format == "decathlon"
    assert hippocampus.class_names == [json_labels["0"], json_labels["1"], json_labels["2"]]
    assert hippocampus.class_names == ["background", "Anterior", "Posterior"]
    assert hippocampus.num_classes == 3
    assert hippocampus.modalities == ["MRI"] and hippocampus.num_channels == 1
    assert hippocampus.spatial_dims == 3 and hippocampus.has_labels
    assert hippocampus.case_ids[:3] == ["hippocampus_001", "hippocampus_003", "hippocampus_004"]


def test_hippocampus_report_and_repr(hippocampus, hippocampus_root):
    report = hippocampus.describe()
    assert report == hippocampus.report
    assert f"Data set at {hippocampus_root}" in report
    assert "format: decathlon (Medical Segmentation Decathlon (Hippocampus)" in report
    assert "cases: 208 (208 with labels, 0 without)" in report
    assert "classes (3): 0 background, 1 Anterior, 2 Posterior" in report
    assert repr(hippocampus).startswith("CaseDataset(format='decathlon', cases=208, labelled=208,")


def test_hippocampus_float_label_case(hippocampus, hippocampus_root):
    case = hippocampus["hippocampus_003"]  # its label file is float32
    assert isinstance(case, Case)
    assert case.image_paths == (str(hippocampus_root / "imagesTr" / "hippocampus_003.nii.gz"),)
    assert case.label_path == str(hippocampus_root / "labelsTr" / "hippocampus_003.nii.gz")
    assert case.roi_path is None
    image, label, geometry, roi = case.load()
    assert image.dtype == np.float32 and image.ndim == 4 and image.shape[-1] == 1
    assert np.issubdtype(label.dtype, np.integer) and label.shape == image.shape[:3]
    assert set(np.unique(label).tolist()) == {0, 1, 2}
    assert geometry.spacing == (1.0, 1.0, 1.0)
    assert roi is None


def test_hippocampus_uint8_image_case(hippocampus, hippocampus_root):
    uint8_cases = [
        c
        for c in hippocampus.cases[:40]
        if sitk.ReadImage(c.image_paths[0]).GetPixelID() == sitk.sitkUInt8
    ]
    assert uint8_cases, "expected some uint8 images among the first 40 cases"
    image, label, geometry, _ = uint8_cases[0].load()
    assert image.dtype == np.float32
    assert geometry.spacing == (1.0, 1.0, 1.0)
    assert set(np.unique(label).tolist()) <= {0, 1, 2}


def test_indexing_slicing_and_subsets(hippocampus):
    first = hippocampus[0]
    assert hippocampus["hippocampus_001"] is first
    assert hippocampus[-1].case_id == hippocampus.case_ids[-1]
    train, val = hippocampus[:166], hippocampus[166:]
    assert (len(train), len(val)) == (166, 42)
    assert isinstance(val, CaseDataset) and val.class_names == hippocampus.class_names
    assert set(train.case_ids).isdisjoint(val.case_ids)
    picked = hippocampus.subset(["hippocampus_004", 0])
    assert picked.case_ids == ["hippocampus_004", "hippocampus_001"]
    assert (
        len(hippocampus.cases_with_labels()) == 208 and len(hippocampus.cases_without_labels()) == 0
    )
    with pytest.raises(KeyError, match="No case 'hippocampus_999'"):
        hippocampus["hippocampus_999"]


def test_validate_returns_the_same_dataset_when_all_good(hippocampus, isbi_root):
    part = hippocampus[:12]
    assert validate(part) is part
    isbi = load_dataset(isbi_root)
    assert isbi.validate() is isbi


def test_dataset_json_path_is_accepted(hippocampus_root):
    ds = load_dataset(hippocampus_root / "dataset.json")
    assert ds.format == "decathlon" and len(ds) == 208


def test_explicit_format_matches_auto(isbi_root):
    assert load_dataset(isbi_root, format="folder").case_ids == load_dataset(isbi_root).case_ids
