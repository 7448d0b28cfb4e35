"""Tests of kerasseg.data.pipeline (and its spec, prepare and cache modules) on small
synthetic volumes and on real data (4 hippocampus MRI cases of the bundled sample, 3 ISBI
2012 EM images)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.data.errors import DataError
from kerasseg.data.cache import CaseStore
from kerasseg.data.pipeline import make_dataset, make_eval_dataset
from kerasseg.data.prepare import prepare_case, prepare_cases, preprocess_case, restore_prediction
from kerasseg.data.spec import make_preprocessing_spec, slice_axes
from kerasseg.data.preprocess import crop_or_pad, extract_slices, zscore
from kerasseg.data.types import CaseData, Geometry


def _synthetic_cases(n=3, channels=2):
    """Volumes of different depths with two foreground classes; seeded."""
    rng = np.random.default_rng(0)
    cases = []
    for i in range(n):
        label = np.zeros((6 + i, 20, 24), np.uint8)
        label[2:4, 5:9, 6:10] = 1
        label[3 + i, 12:14, 15:18] = 2
        image = rng.normal(size=label.shape + (channels,)).astype(np.float32) + label[..., None]
        cases.append(CaseData(image, label, Geometry()))
    return cases


def _take(dataset, n):
    return [tuple(t.numpy() for t in batch) for _, batch in zip(range(n), dataset)]


def _assert_same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def hippocampus4(sample):
    """The first 4 cases of the bundled hippocampus sample (``sample``: tests/conftest.py)."""
    return sample.subset(sample.case_ids[:4])


@pytest.fixture(scope="module")
def membrane3(isbi_dir):
    """The first 3 ISBI 2012 EM images."""
    from kerasseg.data import load_dataset

    dataset = load_dataset(isbi_dir)
    return dataset.subset(dataset.case_ids[:3])


# --------------------------------------------------------------------------- spec


def test_spec_is_json_able_and_validated():
    spec = make_preprocessing_spec(mode="2.5d", target_spacing=(1.0, 1.0, None), patch_size=64)
    assert spec == {
        "version": 1,
        "mode": "2.5d",
        "context": 1,
        "slice_axis": 0,
        "target_spacing": [1.0, 1.0, None],
        "normalization": {"method": "zscore", "params": {"nonzero": False}},
        "patch_size": [64, 64],
    }
    assert json.loads(json.dumps(spec)) == spec
    with pytest.raises(ValueError, match=r"`mode` must be one of \['2d', '2.5d', '3d'\]"):
        make_preprocessing_spec(mode="4d")
    with pytest.raises(ValueError, match="context"):
        make_preprocessing_spec(mode="2d", context=1)
    with pytest.raises(ValueError, match="context"):
        make_preprocessing_spec(mode="2.5d", context=0)
    with pytest.raises(ValueError, match="slice_axis"):
        make_preprocessing_spec(slice_axis=3)
    for bad in ([], [0, 0], [1, 3], True):
        with pytest.raises(ValueError, match="`slice_axis` must be one of"):
            make_preprocessing_spec(slice_axis=bad)
    # Several axes make a multi-view spec; one listed axis is the plain single-axis spec.
    assert make_preprocessing_spec(slice_axis=(2, 0))["slice_axis"] == [2, 0]
    assert make_preprocessing_spec(slice_axis=[1])["slice_axis"] == 1
    assert slice_axes(make_preprocessing_spec(slice_axis=[0, 1, 2])) == [0, 1, 2]
    assert slice_axes({"mode": "2d"}) == [0]  # specs written before the key existed
    with pytest.raises(ValueError, match="normalization"):
        make_preprocessing_spec(normalization="histogram")


def test_preprocess_case_and_restore_prediction():
    label = np.zeros((8, 8, 8), np.uint8)
    label[2:6, 2:6, 2:6] = 1
    image = (label[..., None] * 10.0 + 5.0).astype(np.float32)
    spec = make_preprocessing_spec(target_spacing=(2.0, 2.0, 2.0))
    out = preprocess_case(CaseData(image, label, Geometry()), spec)
    assert out.image.shape == (4, 4, 4, 1) and out.label.shape == (4, 4, 4)
    assert out.geometry.spacing == (2.0, 2.0, 2.0) and out.geometry.origin == (0.5, 0.5, 0.5)
    assert abs(float(out.image.mean())) < 0.2  # z-scored before resampling
    prepared = prepare_case(CaseData(image, label, Geometry()), spec, case_id="cube")
    assert prepared.original_shape == (8, 8, 8) and prepared.original_geometry == Geometry()
    restored = restore_prediction(prepared.label, prepared)
    np.testing.assert_array_equal(restored, label)  # a 2-aligned cube survives the round trip
    scores = restore_prediction(np.stack([1.0 - prepared.label, prepared.label], -1).astype(np.float32), prepared)
    assert scores.shape == (8, 8, 8, 2)
    with pytest.raises(ValueError, match="prediction"):
        restore_prediction(np.zeros((3, 4, 4)), prepared)


def test_preprocess_real_hippocampus_round_trip(hippocampus4):
    case = hippocampus4[0]
    spec = make_preprocessing_spec(target_spacing=(1.5, 1.5, 1.5))
    prepared = prepare_case(case, spec)
    original = case.load()
    expected_shape = tuple(int(round(n / 1.5)) for n in original.image.shape[:3])
    assert prepared.image.shape[:3] == expected_shape
    assert prepared.geometry.direction == original.geometry.direction
    assert set(np.unique(prepared.label)) <= {0, 1, 2}
    restored = restore_prediction(prepared.label, prepared)
    assert restored.shape == original.label.shape
    for c in (1, 2):
        a, b = restored == c, original.label == c
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.8


# ----------------------------------------------------------------------- training


@pytest.mark.parametrize("backend", ["albumentations", "tf"])
def test_training_batches_shapes_dtypes_and_labels(backend):
    dataset = make_dataset(_synthetic_cases(), patch_size=(16, 16), batch_size=4, mode="2.5d",
                           augment="default", augment_backend=backend, seed=1)
    assert dataset.element_spec[0].shape == (4, 16, 16, 6)
    for images, labels in _take(dataset, 3):
        assert images.shape == (4, 16, 16, 6) and images.dtype == np.float32
        assert labels.shape == (4, 16, 16) and labels.dtype == np.int32
        assert set(np.unique(labels)) <= {0, 1, 2} and np.all(np.isfinite(images))


@pytest.mark.parametrize("backend", ["albumentations", "tf"])
def test_training_is_deterministic_for_a_seed(backend):
    cases = _synthetic_cases()

    def build(seed, parallel=None):
        return make_dataset(cases, patch_size=16, batch_size=4, augment="strong",
                            augment_backend=backend, seed=seed, num_parallel_calls=parallel)

    reference = _take(build(5), 4)
    _assert_same(reference, _take(build(5, parallel=1), 4))
    other = _take(build(6), 4)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(reference, other))


def test_a_prepared_store_feeds_the_same_batches_as_its_source():
    cases = _synthetic_cases()
    spec = make_preprocessing_spec(mode="2.5d")
    store = CaseStore(cases, spec, patch_size=(1, 1))
    assert store.total_slices == 6 + 7 + 8 and store.num_classes == 3

    def build(source):
        return make_dataset(source, patch_size=16, batch_size=4, spec=spec, augment="light",
                            seed=3)

    _assert_same(_take(build(cases), 3), _take(build(store), 3))
    evaluation = [make_eval_dataset(source, patch_size=16, spec=spec) for source in (cases, store)]
    _assert_same(*[_take(ds, 10) for ds in evaluation])
    # A store prepared by another spec is refused rather than silently used.
    with pytest.raises(ValueError, match="CaseStore prepared by another spec"):
        make_dataset(store, patch_size=16, spec=make_preprocessing_spec(mode="2d"))
    # The store's labels are checked against the classes asked for.
    with pytest.raises(DataError, match=r"case_0.*\[0, 1, 2\].*num_classes=2"):
        make_dataset(store, patch_size=16, spec=spec, num_classes=2)


def test_finite_epochs_draw_new_samples_but_reproduce_from_scratch():
    cases = _synthetic_cases()

    def build():
        return make_dataset(cases, patch_size=16, batch_size=5, repeat=False, samples_per_epoch=10,
                            augment="light", seed=2)

    dataset = build()
    epoch1, epoch2 = _take(dataset, 10), _take(dataset, 10)
    assert len(epoch1) == 2 and epoch1[0][0].shape[0] == 5
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])
    _assert_same(epoch1, _take(build(), 10))
    # Default epoch: one sample per slice (6 + 7 + 8 = 21), last partial batch kept on request.
    whole = make_dataset(cases, patch_size=16, batch_size=8, repeat=False, drop_remainder=False)
    assert sum(b[0].shape[0] for b in _take(whole, 10)) == 21


def test_sharding_gives_disjoint_interleaved_parts_of_the_stream():
    cases = _synthetic_cases()

    def build(shard):
        return make_dataset(cases, patch_size=16, batch_size=1, augment="none", seed=3, shard=shard)

    full = _take(build(None), 8)
    first, second = _take(build((2, 0)), 4), _take(build((2, 1)), 4)
    _assert_same(first, full[0::2])
    _assert_same(second, full[1::2])
    assert not any(np.array_equal(a[0], b[0]) for a in first for b in second)
    policy = tf.data.experimental.AutoShardPolicy
    assert build(None).options().experimental_distribute.auto_shard_policy == policy.DATA
    assert build((2, 0)).options().experimental_distribute.auto_shard_policy == policy.OFF
    with pytest.raises(ValueError, match="shard"):
        build((2, 2))


def test_foreground_prob_controls_patches_with_foreground():
    cases = _synthetic_cases()

    def fraction(prob):
        dataset = make_dataset(cases, patch_size=(4, 4), batch_size=50, augment="none",
                               foreground_prob=prob, seed=4)
        labels = _take(dataset, 4)
        return np.mean([(lab > 0).any() for batch in labels for lab in batch[1]])

    assert fraction(1.0) == 1.0
    assert fraction(0.0) < 0.25


def test_whole_slices_without_patch_size_need_one_shape():
    cases = _synthetic_cases()
    images, labels = _take(make_dataset(cases, batch_size=2, augment="none"), 1)[0]
    assert images.shape == (2, 20, 24, 2)
    odd = cases + [CaseData(np.zeros((3, 10, 10, 2), np.float32), np.zeros((3, 10, 10), np.uint8), Geometry())]
    with pytest.raises(ValueError, match="patch_size"):
        make_dataset(odd, batch_size=2)


# ---------------------------------------------------------------------- evaluation


def test_eval_dataset_yields_every_slice_in_order_with_context():
    cases = _synthetic_cases()
    dataset = make_eval_dataset(cases, patch_size=(16, 28), batch_size=4, mode="2.5d", return_index=True)
    images, labels, index = (np.concatenate(parts) for parts in zip(*_take(dataset, 100)))
    expected_index = [(c, z) for c, case in enumerate(cases) for z in range(case.label.shape[0])]
    assert index.tolist() == [list(p) for p in expected_index]
    row = 0
    for case in cases:
        slices = extract_slices(zscore(case.image), context=1)
        for z in range(case.label.shape[0]):
            np.testing.assert_allclose(images[row], crop_or_pad(slices[z], (16, 28))[0], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(labels[row], crop_or_pad(case.label[z], (16, 28))[0])
            row += 1
    # Channels of a 2.5-D slice are its neighbours; the first slice repeats itself.
    np.testing.assert_array_equal(images[0][..., 0], images[0][..., 1])
    np.testing.assert_array_equal(images[1][..., 0], images[0][..., 1])


def test_multi_view_eval_dataset_slices_every_case_across_each_axis():
    cases = _synthetic_cases(n=2, channels=1)
    dataset = make_eval_dataset(cases, patch_size=(24, 24), batch_size=8, slice_axis=[0, 2],
                                return_index=True)
    images, labels, index = (np.concatenate(parts) for parts in zip(*_take(dataset, 100)))
    # Entry c * 2 + v is view v (axis 0, then axis 2) of case c.
    expected, rows = [], []
    for c, case in enumerate(cases):
        for v, axis in enumerate((0, 2)):
            label = np.moveaxis(case.label, axis, 0)
            image = np.moveaxis(zscore(case.image), axis, 0)
            for z in range(label.shape[0]):
                expected.append([2 * c + v, z])
                rows.append((image[z], label[z]))
    assert index.tolist() == expected
    assert len(images) == sum(6 + i + 24 for i in range(2))
    for (image, label), got_image, got_label in zip(rows, images, labels):
        np.testing.assert_array_equal(got_label, crop_or_pad(label, (24, 24))[0])
        np.testing.assert_allclose(got_image, crop_or_pad(image, (24, 24))[0], rtol=1e-5, atol=1e-6)


def test_multi_view_training_draws_slices_from_every_view():
    label = np.zeros((4, 8, 12), np.uint8)
    label[1:3, 2:6, 3:9] = 1
    image = np.arange(label.size, dtype=np.float32).reshape(label.shape + (1,))
    cases = [CaseData(image, label, Geometry())]
    dataset = make_dataset(cases, patch_size=(12, 12), batch_size=16, slice_axis=[0, 1, 2],
                           normalization="none", augment="none", seed=1, foreground_prob=0.0)
    seen = set()
    for images, _ in _take(dataset, 4):
        for slice_ in images:
            # Padding is zero; the real pixels tell which (H, W) face of the volume it is.
            rows, cols = np.nonzero(slice_[..., 0] > 0)
            seen.add((rows.max() - rows.min() + 1 if rows.size else 0,
                      cols.max() - cols.min() + 1 if cols.size else 0))
    # Axis 0 slices are 8x12, axis 1 slices 4x12 and axis 2 slices 4x8.
    assert {(8, 12), (4, 12), (4, 8)} <= seen


def test_eval_shards_are_disjoint_and_complete():
    cases = _synthetic_cases()
    parts = []
    for index in range(3):
        dataset = make_eval_dataset(cases, batch_size=4, shard=(3, index), return_index=True)
        parts.append({tuple(p) for batch in _take(dataset, 100) for p in batch[2]})
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == 21


# --------------------------------------------------------------------- bad input


class _BrokenCase:
    case_id = "broken_007"
    image_paths = ("/data/imagesTr/broken_007.nii.gz",)
    label_path = "/data/labelsTr/broken_007.nii.gz"

    def load(self):
        raise OSError("unexpected end of data")


def test_bad_cases_raise_named_data_errors_before_the_graph():
    good = _synthetic_cases(2)
    with pytest.raises(DataError, match=r"broken_007.*imagesTr/broken_007\.nii\.gz.*unexpected end of data"):
        make_dataset(good + [_BrokenCase()], patch_size=16)
    nan_image = good[0].image.copy()
    nan_image[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        make_dataset([CaseData(nan_image, good[0].label, Geometry())], patch_size=16)
    with pytest.raises(DataError, match=r"case_0.*\[0, 1, 2\].*num_classes=2"):
        make_dataset(good, patch_size=16, num_classes=2)
    with pytest.raises(DataError, match="no label map"):
        make_eval_dataset([CaseData(good[0].image, None, Geometry())])
    with pytest.raises(DataError, match="same number of channels"):
        make_dataset([good[0], CaseData(good[1].image[..., :1], good[1].label, Geometry())], patch_size=16)
    with pytest.raises(DataError, match="integer class"):
        prepare_cases([CaseData(good[0].image, good[0].label + 0.5, Geometry())], make_preprocessing_spec())


def test_bad_arguments_list_the_valid_choices():
    cases = _synthetic_cases(1)
    with pytest.raises(ValueError, match=r"`augment` must be one of \['none', 'light', 'default', 'strong'\]"):
        make_dataset(cases, patch_size=16, augment="heavy")
    with pytest.raises(ValueError, match=r"`augment_backend` must be one of \['albumentations', 'tf'\]"):
        make_dataset(cases, patch_size=16, augment_backend="torch")
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(cases, patch_size=16, batch_size=0)
    with pytest.raises(ValueError, match="source"):
        make_dataset(cases[0], patch_size=16)
    with pytest.raises(ValueError, match="source"):
        make_dataset([], patch_size=16)
    with pytest.raises(ValueError, match="samples_per_epoch"):
        make_dataset(cases, patch_size=16, batch_size=8, repeat=False, samples_per_epoch=4)


# ---------------------------------------------------------------------- caching


def test_disk_cache_and_no_cache_give_the_memory_results(tmp_path):
    cases = _synthetic_cases()

    def build(cache):
        return make_dataset(cases, patch_size=16, batch_size=4, augment="default", seed=9, cache=cache)

    reference = _take(build("memory"), 3)
    _assert_same(reference, _take(build(tmp_path), 3))
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 6 and all(f.endswith(".npy") for f in files)
    stamps = {f: os.stat(tmp_path / f).st_mtime_ns for f in files}
    _assert_same(reference, _take(build(tmp_path), 3))  # read back from the cache
    assert {f: os.stat(tmp_path / f).st_mtime_ns for f in files} == stamps
    _assert_same(reference, _take(build(None), 3))


def test_stored_spec_reproduces_the_pipeline():
    cases = _synthetic_cases()
    spec = json.loads(json.dumps(make_preprocessing_spec(mode="2.5d", normalization="minmax")))
    from_spec = _take(make_dataset(cases, spec=spec, patch_size=16, seed=1), 2)
    direct = _take(make_dataset(cases, mode="2.5d", normalization="minmax", patch_size=16, seed=1), 2)
    _assert_same(from_spec, direct)


# --------------------------------------------------------------------- real data


@pytest.mark.parametrize("backend", ["albumentations", "tf"])
def test_real_hippocampus_slices(hippocampus4, backend):
    dataset = make_dataset(hippocampus4, patch_size=64, batch_size=8, mode="2.5d", augment="default",
                           augment_backend=backend, seed=0)
    batches = _take(dataset, 3)
    for images, labels in batches:
        assert images.shape == (8, 64, 64, 3) and images.dtype == np.float32
        assert labels.shape == (8, 64, 64) and labels.dtype == np.int32
        assert set(np.unique(labels)) <= {0, 1, 2} and np.all(np.isfinite(images))
    assert {1, 2} <= set(np.unique(np.concatenate([b[1] for b in batches])))
    _assert_same(batches, _take(make_dataset(hippocampus4, patch_size=64, batch_size=8, mode="2.5d",
                                             augment="default", augment_backend=backend, seed=0), 3))


def test_real_hippocampus_eval_covers_every_slice(hippocampus4):
    depth = sum(case.load().image.shape[0] for case in hippocampus4)
    dataset = make_eval_dataset(hippocampus4, patch_size=64, batch_size=16)
    batches = _take(dataset, 1000)
    assert sum(b[0].shape[0] for b in batches) == depth
    assert batches[0][0].shape[1:] == (64, 64, 1)


@pytest.mark.parametrize("backend", ["albumentations", "tf"])
def test_real_membrane_patches(membrane3, backend):
    dataset = make_dataset(membrane3, patch_size=256, batch_size=4, augment="default",
                           augment_backend=backend, seed=0)
    batches = _take(dataset, 2)
    for images, labels in batches:
        assert images.shape == (4, 256, 256, 1) and images.dtype == np.float32
        assert labels.shape == (4, 256, 256) and set(np.unique(labels)) <= {0, 1}
    # z-scored EM patches: both membrane (0) and cell interior (1) present, interior dominant.
    labels = np.concatenate([b[1] for b in batches])
    assert 0.5 < labels.mean() < 0.95
