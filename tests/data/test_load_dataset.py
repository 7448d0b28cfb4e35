"""load_dataset on real hippocampus data, and the CaseDataset interface.

The interface is checked on the bundled sample (52 cases); the summary of the full set
(208 cases) on the shared data, when present.
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.data import Case, CaseDataset, load_dataset, validate


def test_hippocampus_summary(hippocampus, hippocampus_dir):
    json_labels = json.loads((hippocampus_dir / "dataset.json").read_text())["labels"]
    assert isinstance(hippocampus, CaseDataset)
    assert len(hippocampus) == 208
    assert hippocampus.format == "decathlon"
    assert hippocampus.class_names == [json_labels["0"], json_labels["1"], json_labels["2"]]
    assert hippocampus.class_names == ["background", "Anterior", "Posterior"]
    assert hippocampus.num_classes == 3
    assert hippocampus.modalities == ["MRI"] and hippocampus.num_channels == 1
    assert hippocampus.spatial_dims == 3 and hippocampus.has_labels
    assert hippocampus.case_ids[:3] == ["hippocampus_001", "hippocampus_003", "hippocampus_004"]


def test_hippocampus_report_and_repr(hippocampus, hippocampus_dir):
    report = hippocampus.describe()
    assert report == hippocampus.report
    assert f"Data set at {hippocampus_dir}" in report
    assert "format: decathlon (Medical Segmentation Decathlon (Hippocampus)" in report
    assert "cases: 208 (208 with labels, 0 without)" in report
    assert "classes (3): 0 background, 1 Anterior, 2 Posterior" in report
    assert repr(hippocampus).startswith("CaseDataset(format='decathlon', cases=208, labelled=208,")


def test_hippocampus_float_label_case(sample, sample_dir):
    case = sample["hippocampus_243"]  # its label file is float32
    assert isinstance(case, Case)
    assert case.image_paths == (str(sample_dir / "imagesTr" / "hippocampus_243.nii.gz"),)
    assert case.label_path == str(sample_dir / "labelsTr" / "hippocampus_243.nii.gz")
    assert case.roi_path is None
    image, label, geometry, roi = case.load()
    assert image.dtype == np.float32 and image.ndim == 4 and image.shape[-1] == 1
    assert np.issubdtype(label.dtype, np.integer) and label.shape == image.shape[:3]
    assert set(np.unique(label).tolist()) == {0, 1, 2}
    assert geometry.spacing == (1.0, 1.0, 1.0)
    assert roi is None


def test_hippocampus_uint8_image_case(sample):
    uint8_cases = [
        c
        for c in sample.cases[:40]
        if sitk.ReadImage(c.image_paths[0]).GetPixelID() == sitk.sitkUInt8
    ]
    assert uint8_cases, "expected some uint8 images among the first 40 cases"
    image, label, geometry, _ = uint8_cases[0].load()
    assert image.dtype == np.float32
    assert geometry.spacing == (1.0, 1.0, 1.0)
    assert set(np.unique(label).tolist()) <= {0, 1, 2}


def test_indexing_slicing_and_subsets(sample):
    first = sample[0]
    assert sample["hippocampus_001"] is first
    assert sample[-1].case_id == sample.case_ids[-1] == "hippocampus_387"
    train, val = sample[:41], sample[41:]
    assert (len(train), len(val)) == (41, 11)
    assert isinstance(val, CaseDataset) and val.class_names == sample.class_names
    assert set(train.case_ids).isdisjoint(val.case_ids)
    picked = sample.subset(["hippocampus_008", 0])
    assert picked.case_ids == ["hippocampus_008", "hippocampus_001"]
    assert len(sample.cases_with_labels()) == 52 and len(sample.cases_without_labels()) == 0
    with pytest.raises(KeyError, match="No case 'hippocampus_999'"):
        sample["hippocampus_999"]


def test_validate_returns_the_same_dataset_when_all_good(sample):
    part = sample[:12]
    assert validate(part) is part


def test_validate_returns_the_same_folder_dataset_when_all_good(isbi_dir):
    isbi = load_dataset(isbi_dir)
    assert isbi.validate() is isbi


def test_dataset_json_path_is_accepted(sample_dir):
    ds = load_dataset(sample_dir / "dataset.json")
    assert ds.format == "decathlon" and len(ds) == 52


def test_explicit_format_matches_auto(isbi_dir):
    assert load_dataset(isbi_dir, format="folder").case_ids == load_dataset(isbi_dir).case_ids
