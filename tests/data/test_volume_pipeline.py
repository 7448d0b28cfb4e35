"""3-D patch and tile pipelines (spec mode "3d"): known windows, coverage, seeds, errors."""

import numpy as np
import pytest

from kerasseg.data.cache import CaseStore
from kerasseg.data.pipeline import make_dataset, make_eval_dataset
from kerasseg.data.spec import make_preprocessing_spec
from kerasseg.data.types import CaseData, Geometry
from kerasseg.data.volume_pipeline import tile_starts


def _coded_case(shape, foreground=None):
    """An image whose value at (z, y, x) is z * 10000 + y * 100 + x: a patch names its start."""
    z, y, x = np.indices(shape)
    image = (z * 10000 + y * 100 + x).astype("float32")[..., None]
    label = np.zeros(shape, "uint8")
    if foreground is not None:
        label[foreground] = 1
    return CaseData(image, label, Geometry())


def _start(patch_image):
    """The (z, y, x) start of a patch cut from a coded image (first unpadded voxel)."""
    value = int(patch_image[0, 0, 0, 0])
    return value // 10000, value // 100 % 100, value % 100


SPEC = dict(mode="3d", normalization="none")


def test_tile_starts_cover_each_axis():
    assert tile_starts(10, 4) == [0, 4, 6]
    assert tile_starts(8, 4) == [0, 4]
    assert tile_starts(4, 4) == [0]
    assert tile_starts(1, 4) == [-1]            # centred: one voxel of padding before
    with pytest.raises(ValueError, match="`patch` must be a positive int"):
        tile_starts(10, 0)


def test_tiles_reassemble_every_case_exactly():
    cases = [_coded_case((9, 6, 5)), _coded_case((4, 8, 8), foreground=(slice(1, 3),) * 3)]
    ds = make_eval_dataset(cases, spec=make_preprocessing_spec(**SPEC), patch_size=(4, 4, 4),
                           batch_size=3, return_index=True)
    rebuilt = [np.full(c.image.shape[:3], -1.0) for c in cases]
    labels = [np.full(c.image.shape[:3], -1) for c in cases]
    count = 0
    for images, tile_labels, index in ds:
        assert images.shape[1:] == (4, 4, 4, 1) and tile_labels.shape[1:] == (4, 4, 4)
        for image, label, (case, z, y, x) in zip(images.numpy(), tile_labels.numpy(),
                                                 index.numpy()):
            count += 1
            shape = rebuilt[case].shape
            window = tuple(slice(max(s, 0), min(s + 4, n)) for s, n in zip((z, y, x), shape))
            inner = tuple(slice(w.start - s, w.stop - s) for w, s in zip(window, (z, y, x)))
            rebuilt[case][window] = image[inner][..., 0]
            labels[case][window] = label[inner]
    # Case 0: 3 x 2 x 2 tiles; case 1: 1 x 2 x 2.
    assert count == 3 * 2 * 2 + 1 * 2 * 2
    for case, image, label in zip(cases, rebuilt, labels):
        np.testing.assert_array_equal(image, case.image[..., 0])
        np.testing.assert_array_equal(label, case.label)


def test_patches_are_windows_of_the_volume_and_oversample_foreground():
    foreground = (slice(6, 8), slice(10, 12), slice(3, 5))
    case = _coded_case((12, 16, 10), foreground=foreground)
    ds = make_dataset([case], spec=make_preprocessing_spec(**SPEC), patch_size=(4, 6, 4),
                      batch_size=4, augment="none", foreground_prob=1.0, seed=3)
    images, labels = next(iter(ds))
    assert images.shape == (4, 4, 6, 4, 1) and labels.shape == (4, 4, 6, 4)
    for image, label in zip(images.numpy(), labels.numpy()):
        z, y, x = _start(image)
        np.testing.assert_array_equal(image[..., 0], case.image[z:z + 4, y:y + 6, x:x + 4, 0])
        np.testing.assert_array_equal(label, case.label[z:z + 4, y:y + 6, x:x + 4])
        assert label.sum() > 0                      # centred on a foreground voxel
    again = next(iter(make_dataset([case], spec=make_preprocessing_spec(**SPEC),
                                   patch_size=(4, 6, 4), batch_size=4, augment="none",
                                   foreground_prob=1.0, seed=3)))
    np.testing.assert_array_equal(again[0].numpy(), images.numpy())


def test_a_volume_smaller_than_the_patch_is_padded_with_zeros():
    case = _coded_case((2, 3, 3), foreground=(slice(0, 2),) * 3)
    ds = make_dataset([case], spec=make_preprocessing_spec(**SPEC), patch_size=(4, 4, 4),
                      batch_size=1, augment="none", foreground_prob=0.0)
    image, label = (t.numpy()[0] for t in next(iter(ds)))
    assert (label > 0).sum() == (case.label > 0).sum()     # all of the volume is inside
    assert np.isclose(image.sum(), case.image.sum())       # the rest is zero padding


def test_augmented_batches_keep_shapes_and_labels():
    case = _coded_case((12, 16, 10), foreground=(slice(4, 9), slice(5, 12), slice(2, 8)))
    store = CaseStore([case], make_preprocessing_spec(mode="3d"), patch_size=(8, 8, 8))
    ds = make_dataset(store, spec=store.spec, patch_size=(8, 8, 8), batch_size=2,
                      augment="strong", seed=1)
    images, labels = next(iter(ds))
    assert images.shape == (2, 8, 8, 8, 1) and images.dtype.name == "float32"
    assert set(np.unique(labels.numpy())) <= {0, 1}


def test_3d_errors_name_what_is_expected():
    cases = [_coded_case((4, 4, 4)), _coded_case((4, 6, 4))]
    with pytest.raises(ValueError, match="different volume shapes"):
        make_eval_dataset(cases, spec=make_preprocessing_spec(**SPEC))
    with pytest.raises(ValueError, match=r"3 positive ints \(d, h, w\)"):
        make_dataset(cases, spec=make_preprocessing_spec(**SPEC), patch_size=(4, 4))
    with pytest.raises(ValueError, match="augment"):
        make_dataset(cases, spec=make_preprocessing_spec(**SPEC), patch_size=4,
                     augment="sideways")
