"""Each planner rule on fingerprints written by hand, and every given option replacing its row."""

import pytest

from kerasseg.plan import Fingerprint, IntensityStats, parse_duration, plan_training
from kerasseg.plan import planner


def _fp(shapes, spacings=None, channels=1, modalities=("MRI",), classes=2, spatial_dims=3,
        intensity=None, frequencies=None):
    spacings = spacings or [(1.0, 1.0, 1.0)] * len(shapes)
    stats = intensity or IntensityStats(0.0, 1.0, 2.0, 1.0, 0.5, 100)
    return Fingerprint(
        cases=len(shapes), spatial_dims=spatial_dims, format="memory",
        modalities=tuple(modalities), channels=channels,
        class_names=("background",) + tuple(f"c{i}" for i in range(1, classes)),
        shapes=tuple(tuple(s) for s in shapes), spacings=tuple(tuple(s) for s in spacings),
        intensity=(stats,) * channels,
        class_frequencies=tuple(frequencies or [0.9] + [0.1 / (classes - 1)] * (classes - 1)),
        object_sizes=(None,) + (10.0,) * (classes - 1),
        object_extents=(None,) + ((1.0, 3.0, 3.0),) * (classes - 1))


def _images(height, width, count=10, channels=1):
    return _fp([(1, height, width)] * count, [(1.0, 1.0, 1.0)] * count, channels=channels,
               spatial_dims=2)


def test_2d_images_train_in_2d_with_whole_slices():
    plan = plan_training(_images(64, 96), "unet")
    assert (plan["mode"], plan["context"], plan["slice_axis"]) == ("2d", None, 0)
    assert plan["target_spacing"] is None
    # Short side 64: 64 / 2**4 = 4 px at the bottleneck -> depth 4, stride 16.
    assert plan["model_options"] == {"depth": 4, "base_filters": 32, "normalization": "instance"}
    assert plan["patch_size"] == [64, 96]
    assert plan["batch_size"] == 32  # 2**19 // (64 * 96) = 85, capped at 32
    assert plan["normalization"] == "zscore"
    assert plan["steps_per_epoch"] == 100


def test_images_larger_than_the_patch_train_on_patches():
    plan = plan_training(_images(584, 565, count=16, channels=3), "unet")
    assert plan["model_options"]["depth"] == 4  # 256 / 2**6 >= 4, capped at depth 4
    assert plan["patch_size"] == [256, 256]
    assert "exceed 256: training on 256x256 patches" in plan.row("patch_size").reason
    assert plan["batch_size"] == 8  # 2**19 // 256**2
    assert plan["normalization"] == "zscore"  # RGB photographs are not CT


def test_images_smaller_than_the_stride_get_a_shallow_network_or_padding():
    plan = plan_training(_images(6, 10), "unet")
    assert plan["model_options"]["depth"] == 1  # floor(log2(6 / 4)) = 0 -> at least 1
    assert plan["patch_size"] == [6, 10]
    tiny = plan_training(_images(3, 3), "unet")
    assert tiny["model_options"]["depth"] == 1 and tiny["patch_size"] == [4, 4]
    given = plan_training(_images(6, 10), "unet", given={"model_options": {"depth": 4}})
    # A given depth of 4 has stride 16: the slices are zero-padded to one stride.
    assert given["model_options"]["depth"] == 4 and given["patch_size"] == [16, 16]
    assert "zero-padded to 16x16" in given.row("patch_size").reason


def test_anisotropic_volumes_slice_the_coarse_axis_at_its_10th_percentile():
    z = [3.0, 5.0, 5.0, 6.0, 4.0]
    fp = _fp([(20, 100, 100)] * 5, [(s, 0.8, 0.8) for s in z])
    plan = plan_training(fp, "unet")
    assert (plan["mode"], plan["context"], plan["slice_axis"]) == ("2.5d", 1, 0)
    # Median spacing (5, 0.8, 0.8) -> ratio 6.25 >= 3; z at the 10th percentile of
    # [3, 4, 5, 5, 6]: 3 + 0.4 * (4 - 3) = 3.4. Stored in (x, y, z) order.
    assert plan["target_spacing"] == pytest.approx([0.8, 0.8, 3.4])
    # Another coarse axis: x.
    fp = _fp([(100, 100, 20)] * 3, [(1.0, 1.0, 4.0), (1.0, 1.0, 5.0), (1.0, 1.0, 5.0)])
    plan = plan_training(fp, "unet")
    assert plan["slice_axis"] == 2 and plan["context"] == 1
    assert plan["target_spacing"] == pytest.approx([4.2, 1.0, 1.0])


def test_near_isotropic_volumes_use_three_views():
    fp = _fp([(36, 50, 35)] * 4, [(1.0, 1.0, 1.0), (1.2, 1.0, 1.0), (1.2, 1.1, 1.0),
                                  (1.0, 1.0, 1.0)])
    plan = plan_training(fp, "unet")
    assert (plan["mode"], plan["context"], plan["slice_axis"]) == ("2.5d", 2, [0, 1, 2])
    # Not all spacings equal: medians per axis, no anisotropy rule (1.1 / 1.0 < 3).
    assert plan["target_spacing"] == pytest.approx([1.0, 1.0, 1.1])


def test_a_given_mode_replans_context_and_slice_axis():
    fp = _fp([(36, 50, 35)] * 4)
    plan = plan_training(fp, "unet", given={"mode": "2d"})
    assert plan.row("mode").given
    assert plan["context"] is None and plan["slice_axis"] == 0
    # Patches then come from axis-0 slices (50 x 35), rounded up to stride 8.
    assert plan["patch_size"] == [56, 40]
    aniso = _fp([(50, 50, 10)] * 2, [(1.0, 1.0, 5.0)] * 2)
    assert plan_training(aniso, "unet", given={"mode": "2d"})["slice_axis"] == 2


def test_ct_gets_a_window_from_the_foreground_percentiles():
    stats = IntensityStats(-100.0, 40.0, 300.0, 50.0, 80.0, 1000)
    plan = plan_training(_fp([(40, 64, 64)] * 3, modalities=("CT",), intensity=stats), "unet")
    assert plan["normalization"] == {"method": "ct_window",
                                     "params": {"center": 100.0, "width": 400.0}}
    two = _fp([(40, 64, 64)] * 3, channels=2, modalities=("CT", "CT"), intensity=stats)
    assert plan_training(two, "unet")["normalization"] == "zscore"


def test_one_foreground_class_flips_and_several_do_not():
    assert plan_training(_images(64, 64), "unet")["augment"] == "default"
    multi = plan_training(_fp([(1, 64, 64)] * 4, classes=3, spatial_dims=2), "unet")
    assert multi["augment"] == {"preset": "default", "flip_prob": 0.0, "rot90_prob": 0.0}


def test_a_single_case_validates_on_itself_with_a_note():
    plan = plan_training(_fp([(30, 40, 40)]), "unet")
    assert plan.fingerprint.cases == 1 and plan["val_fraction"] == 0.2
    assert any("one case only" in note for note in plan.notes)


def test_validation_frequency_keeps_validation_under_a_quarter_of_the_time():
    # 100 isotropic 200^3 volumes: depth 4, stride 16, patch 208 -> batch 2**19 // 208**2
    # = 12. Validating a fifth of them over three views: 20 cases x 600 slices / 3 = 4000
    # step-equivalents against 100 x 12 = 1200 per epoch: every ceil(4000 / 300) = 14.
    plan = plan_training(_fp([(200, 200, 200)] * 100), "unet")
    assert plan["patch_size"] == [208, 208] and plan["batch_size"] == 12
    assert plan["val_every"] == 14
    assert plan_training(_images(64, 64), "unet")["val_every"] == 1


def test_epochs_come_from_a_budget_unless_given():
    plan = plan_training(_images(64, 64), "unet")
    assert plan["epochs"] is None and plan["budget"] == planner.DEFAULT_BUDGET
    budget = plan_training(_images(64, 64), "unet", given={"budget": 1200.0})
    assert budget["epochs"] is None and budget["budget"] == 1200.0
    assert "20 min" in budget.row("epochs").reason
    epochs = plan_training(_images(64, 64), "unet", given={"epochs": 7})
    assert epochs["epochs"] == 7 and epochs["budget"] is None


def test_given_options_replace_their_rows_and_keep_the_rest():
    given = {"batch_size": 7, "learning_rate": 3e-4, "model_options": {"depth": 2},
             "normalization": "minmax", "augment": "none"}
    plan = plan_training(_images(64, 96), "unet", given=given)
    for name in ("batch_size", "learning_rate", "normalization", "augment"):
        assert plan[name] == given[name] and plan.row(name).given, name
    assert plan["model_options"] == {"depth": 2, "base_filters": 32, "normalization": "instance"}
    assert plan["patch_size"] == [64, 96]  # stride 4 at depth 2
    assert not plan.row("steps_per_epoch").given


def test_other_families_get_only_the_options_they_accept():
    plan = plan_training(_images(64, 64), "fcn8s")
    assert "base_filters" not in plan["model_options"]
    with pytest.raises(ValueError, match="`name` must be one of"):
        plan_training(_images(64, 64), "segnet")


def test_3d_families_are_planned_in_mode_3d_and_refused_on_images():
    plan = plan_training(_fp([(32, 64, 64)] * 4), "unet3d")
    assert (plan["mode"], plan["context"], plan["slice_axis"]) == ("3d", 0, 0)
    # 32x64x64 = 131072 voxels <= 64**3: the whole median volume. An axis is pooled while
    # its side halves to >= 4: depth 32 -> 16 -> 8 -> 4 (3 levels), height and width
    # 64 -> ... -> 4 (4 levels). Kernels: 3 where the spacing is at most twice the finest
    # (at the bottleneck the spacing is (8, 16, 16): still 3 everywhere).
    assert plan["patch_size"] == [32, 64, 64]
    assert plan["model_options"]["pool_sizes"] == [[2, 2, 2]] * 3 + [[1, 2, 2]]
    assert plan["model_options"]["kernel_sizes"] == [[3, 3, 3]] * 5
    assert plan["model_options"]["depth"] == 4
    assert plan["batch_size"] == 4  # 2 * 64**3 // 131072
    with pytest.raises(ValueError) as info:
        plan_training(_images(64, 64), "unet3d")
    assert str(info.value) == (
        "`model` 'unet3d' is a 3-D family and the data holds 2-D images; train one of the 2-D "
        "families ['deeplab', 'fcn8s', 'unet']. Received: model='unet3d'")
    with pytest.raises(ValueError, match="`mode` '2.5d' does not fit the 3-D family 'vnet'"):
        plan_training(_fp([(32, 64, 64)] * 4), "vnet", given={"mode": "2.5d"})
    with pytest.raises(ValueError, match="`mode` '3d' is for the 3-D families"):
        plan_training(_fp([(32, 64, 64)] * 4), "unet", given={"mode": "3d"})
    assert planner.trainable_model("DeepLabV3Plus") == "deeplab"


def test_3d_plan_of_anisotropic_volumes_pools_in_plane_first():
    # 3 mm slices, 0.75 mm in-plane; 30 x 160 x 160 voxels = 90 x 120 x 120 mm.
    plan = plan_training(_fp([(30, 160, 160)] * 5, [(3.0, 0.75, 0.75)] * 5, classes=3), "unet3d")
    pools = plan["model_options"]["pool_sizes"]
    kernels = plan["model_options"]["kernel_sizes"]
    # Spacing (3, .75, .75): z waits until in-plane reaches 1.5 (after one pooling), then
    # (3, 1.5, 1.5): z (3 <= 2 * 1.5) joins.
    assert pools[0] == [1, 2, 2] and pools[1] == [2, 2, 2]
    assert kernels[0] == [1, 3, 3] and kernels[1] == [3, 3, 3]
    patch = plan["patch_size"]
    strides = [1, 1, 1]
    for pool in pools:
        strides = [s * p for s, p in zip(strides, pool)]
    assert all(n % s == 0 for n, s in zip(patch, strides))
    assert patch[0] * patch[1] * patch[2] <= 64**3
    # Two foreground classes: no mirroring; anisotropic: rotation about the coarse axis 0.
    assert plan["augment"] == {"preset": "default", "mirror_axes": [], "rotate_axes": [0]}
    assert plan["target_spacing"] is None  # one spacing for every case


def test_a_given_depth_bounds_the_planned_3d_pooling():
    # Same volumes as above; depth 2 given: the first two levels of that plan, whose strides
    # (2, 4, 4) the patch is a multiple of.
    given = {"model_options": {"depth": 2, "base_filters": 4}}
    plan = plan_training(_fp([(30, 160, 160)] * 5, [(3.0, 0.75, 0.75)] * 5, classes=3),
                         "unet3d", given=given)
    options = plan["model_options"]
    assert options["depth"] == 2 and options["base_filters"] == 4
    assert options["pool_sizes"] == [[1, 2, 2], [2, 2, 2]]
    assert len(options["kernel_sizes"]) == 3
    assert all(n % s == 0 for n, s in zip(plan["patch_size"], (2, 4, 4)))


def test_table_and_dict_name_every_row():
    plan = plan_training(_images(64, 96), "unet", given={"batch_size": 7})
    table = plan.table()
    for name in planner.PLANNED:
        assert f"  {name} " in table, name
    assert "batch_size       7" in table and "given" in table
    stored = plan.to_dict()
    assert [row["name"] for row in stored["rows"]] == list(planner.PLANNED)
    assert stored["fingerprint"]["median_shape"] == [1.0, 64.0, 96.0]


@pytest.mark.parametrize("text, seconds", [("20m", 1200.0), ("90s", 90.0), ("1.5h", 5400.0),
                                           ("1200", 1200.0), (45, 45.0), ("2 min", 120.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "-5m", "0", 0, "5 days", True, float("inf")])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="`budget` must be a positive duration"):
        parse_duration(bad)
