"""Tests of kerasseg.data.split: deterministic, order-independent, disjoint splits by case."""

import random
from types import SimpleNamespace

import pytest

from kerasseg.data.split import Split, kfold, split_cases

IDS = [f"hippocampus_{i:03d}" for i in range(1, 11)]


def test_split_is_pinned_for_fixed_ids_and_seed():
    # Hash-based assignment: the same on every machine and Python version.
    assert split_cases(IDS, val_fraction=0.2, test_fraction=0.1, seed=0) == Split(
        train=["hippocampus_001", "hippocampus_004", "hippocampus_005", "hippocampus_006",
               "hippocampus_007", "hippocampus_009", "hippocampus_010"],
        val=["hippocampus_002", "hippocampus_003"],
        test=["hippocampus_008"],
    )


def test_split_is_order_independent_disjoint_and_complete():
    ids = [f"case_{i}" for i in range(37)]
    reference = split_cases(ids, val_fraction=0.2, test_fraction=0.1, seed=3)
    shuffled = list(ids)
    random.Random(0).shuffle(shuffled)
    assert split_cases(shuffled, val_fraction=0.2, test_fraction=0.1, seed=3) == reference
    assert split_cases(tuple(reversed(ids)), 0.2, 0.1, seed=3) == reference
    train, val, test = map(set, reference)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(ids)
    assert (len(train), len(val), len(test)) == (26, 7, 4)
    assert reference.train == sorted(reference.train)


def test_split_depends_on_seed_and_accepts_cases():
    assert split_cases(IDS, seed=0) != split_cases(IDS, seed=1)
    cases = [SimpleNamespace(case_id=i) for i in IDS]
    assert split_cases(cases, seed=0) == split_cases(IDS, seed=0)
    # A small positive fraction still gives one case.
    assert len(split_cases(IDS[:3], val_fraction=0.1).val) == 1
    assert split_cases(IDS, val_fraction=0.0).val == []


def test_split_rejects_bad_input():
    with pytest.raises(ValueError, match="unique"):
        split_cases(["a", "b", "a"])
    with pytest.raises(ValueError, match=r"`val_fraction` must be in \[0, 1\)"):
        split_cases(IDS, val_fraction=1.0)
    with pytest.raises(ValueError, match="at least one for training"):
        split_cases(["a", "b"], val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="not one string"):
        split_cases("abc")


def test_kfold_validation_sets_partition_the_cases():
    ids = [f"case_{i}" for i in range(23)]
    vals = []
    for fold in range(5):
        train, val = kfold(ids, k=5, fold=fold, seed=7)
        assert set(train) | set(val) == set(ids) and not set(train) & set(val)
        assert len(val) in (4, 5)
        shuffled = list(ids)
        random.Random(fold).shuffle(shuffled)
        assert kfold(shuffled, k=5, fold=fold, seed=7) == (train, val)
        vals.append(set(val))
    assert set().union(*vals) == set(ids)
    assert sum(len(v) for v in vals) == len(ids)
    assert kfold(IDS, 5, 0)[1] == ["hippocampus_008", "hippocampus_009"]


def test_kfold_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`k` must be an integer >= 2"):
        kfold(IDS, k=1, fold=0)
    with pytest.raises(ValueError, match="must not exceed"):
        kfold(IDS[:3], k=4, fold=0)
    with pytest.raises(ValueError, match=r"`fold` must be an integer in \[0, 4\]"):
        kfold(IDS, k=5, fold=5)
