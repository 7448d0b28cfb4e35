"""The 3-D topology rules (nnU-Net's): pooling and kernels per axis, patch within a budget."""

import math

import pytest

from kerasseg.plan.topology import MAX_PATCH_VOXELS, plan_topology


def test_isotropic_median_volume_is_the_whole_patch():
    t = plan_topology((1.0, 1.0, 1.0), (36, 50, 35))
    # Sides halve while they stay >= 4: 36 -> 18 -> 9 -> 4.5 (3 levels; 4.5 / 2 < 4).
    assert t.pool_sizes == [(2, 2, 2)] * 3 and t.stride == (8, 8, 8)
    assert t.kernel_sizes == [(3, 3, 3)] * 4
    assert t.patch_size == [40, 56, 40]            # 36, 50, 35 rounded up to 8
    assert t.batch_size == 5                       # 2 * 64**3 // (40 * 56 * 40) = 5
    assert "whole, padded to 40x56x40" in t.reason


def test_thick_slices_are_pooled_in_plane_first_with_in_plane_kernels():
    t = plan_topology((3.0, 0.5, 0.5), (40, 300, 300))
    # (3, .5, .5): only y, x (0.5 <= 1); (3, 1, 1): y, x; (3, 2, 2): z joins (3 <= 4).
    assert t.pool_sizes[:3] == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]
    assert t.kernel_sizes[:3] == [(1, 3, 3), (1, 3, 3), (3, 3, 3)]
    assert all(n % s == 0 for n, s in zip(t.patch_size, t.stride))
    assert math.prod(t.patch_size) <= MAX_PATCH_VOXELS
    assert "shrunk to" in t.reason and t.batch_size == 2


def test_a_large_volume_shrinks_to_the_budget_largest_extent_first():
    t = plan_topology((1.0, 1.0, 1.0), (300, 512, 512))
    # Height and width (512 mm) shrink before depth (300 mm) until all reach 64: 64**3.
    assert t.patch_size == [64, 64, 64] and t.stride == (16, 16, 16)
    assert t.pool_sizes == [(2, 2, 2)] * 4       # 64 -> 4 in four levels
    assert t.batch_size == 2


def test_a_volume_smaller_than_one_stride_still_gets_one_level():
    t = plan_topology((1.0, 1.0, 1.0), (3, 2, 2))
    assert t.pool_sizes == [(2, 2, 2)] and t.patch_size == [4, 2, 2]
    assert t.batch_size == 8                       # capped
    iso = plan_topology((1.0, 1.0, 1.0), (36, 50, 35), isotropic=True)
    assert set(iso.pool_sizes) == {(2, 2, 2)}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"`spacing_zyx` must hold 3 positive numbers"):
        plan_topology((1.0, 0.0, 1.0), (10, 10, 10))
    with pytest.raises(ValueError, match=r"`median_shape_zyx` must hold 3 positive numbers"):
        plan_topology((1.0, 1.0, 1.0), (10, 10))
