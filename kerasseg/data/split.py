"""Deterministic train/validation/test splits and k-fold cross-validation, by case.

Splits are always made over whole cases (patients, volumes), never over slices, so that
no slice of a validation case is seen in training. A case's place depends only on its id
and the seed: each id is ranked by a SHA-256 hash of ``"{seed}:{case_id}"``, so the
result does not depend on the order in which ids are given, and it is the same on every
machine and Python version (unlike Python's salted ``hash``).
"""

import hashlib
from typing import List, NamedTuple

__all__ = ["Split", "split_cases", "kfold"]


class Split(NamedTuple):
    """Case ids of a split, each list sorted.

    Attributes:
        train: training case ids.
        val: validation case ids.
        test: test case ids (empty unless ``test_fraction > 0``).
    """

    train: List[str]
    val: List[str]
    test: List[str]


def _ids(case_ids):
    if isinstance(case_ids, str):
        raise ValueError(f"`case_ids` must be a list of case ids, not one string. Received: case_ids={case_ids!r}")
    ids = [str(getattr(c, "case_id", c)) for c in case_ids]
    seen, duplicates = set(), set()
    for case_id in ids:
        (duplicates if case_id in seen else seen).add(case_id)
    if duplicates:
        raise ValueError(f"`case_ids` must be unique. Received duplicates: {sorted(duplicates)[:10]}")
    return ids


def _ranked(ids, seed):
    def key(case_id):
        return hashlib.sha256(f"{int(seed)}:{case_id}".encode("utf-8")).hexdigest(), case_id

    return sorted(ids, key=key)


def _check_fraction(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value}")


def split_cases(case_ids, val_fraction=0.2, test_fraction=0.0, seed=0):
    """Split case ids into train, validation and test sets, deterministically.

    The number of validation (test) cases is ``round(fraction * n)``, at least one when
    the fraction is positive. Cases are assigned by their hash rank (see module
    docstring), so the same ids and seed always give the same split, whatever their order.

    Args:
        case_ids: case ids (strings), or cases with a ``case_id`` attribute (e.g. a
            ``CaseDataset``); use ``dataset.subset(split.train)`` to get the cases back.
        val_fraction: fraction of cases for validation, in [0, 1).
        test_fraction: fraction of cases held out for testing, in [0, 1).
        seed: changes the assignment.

    Returns:
        A :class:`Split` of sorted lists of ids; the three are disjoint and together hold
        every id.

    Raises:
        ValueError: for duplicate ids, fractions outside [0, 1), or too few cases to leave
            at least one training case.

    Example:
        >>> split = split_cases([f"case_{i}" for i in range(10)], val_fraction=0.2)
        >>> len(split.train), len(split.val), len(split.test)
        (8, 2, 0)
    """
    ids = _ids(case_ids)
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    n = len(ids)

    def count(fraction):
        return 0 if fraction == 0 else max(1, int(round(fraction * n)))

    n_test, n_val = count(test_fraction), count(val_fraction)
    if n - n_test - n_val < 1:
        raise ValueError(
            f"`case_ids` must hold enough cases to leave at least one for training with "
            f"val_fraction={val_fraction} and test_fraction={test_fraction}. Received: {n} case ids"
        )
    ranked = _ranked(ids, seed)
    test, val, train = ranked[:n_test], ranked[n_test:n_test + n_val], ranked[n_test + n_val:]
    return Split(sorted(train), sorted(val), sorted(test))


def kfold(case_ids, k, fold, seed=0):
    """Return the ``(train, val)`` case ids of fold ``fold`` of a k-fold cross-validation.

    Cases are ranked by hash (see module docstring) and dealt round-robin into ``k``
    folds, so fold sizes differ by at most one and the validation sets of the ``k`` folds
    are disjoint and cover every case.

    Args:
        case_ids: case ids, or cases with a ``case_id`` attribute.
        k: number of folds, at least 2 and at most the number of cases.
        fold: which fold to return, in ``0..k-1``.
        seed: changes the assignment.

    Returns:
        ``(train_ids, val_ids)``, two sorted lists.

    Raises:
        ValueError: for duplicate ids, ``k < 2``, ``k`` above the number of cases, or
            ``fold`` outside ``0..k-1``.

    Example:
        >>> train, val = kfold([f"case_{i}" for i in range(10)], k=5, fold=0)
        >>> len(train), len(val)
        (8, 2)
    """
    ids = _ids(case_ids)
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"`k` must be an integer >= 2. Received: k={k!r}")
    if k > len(ids):
        raise ValueError(f"`k` must not exceed the number of cases ({len(ids)}). Received: k={k}")
    if not isinstance(fold, int) or not 0 <= fold < k:
        raise ValueError(f"`fold` must be an integer in [0, {k - 1}]. Received: fold={fold!r}")
    ranked = _ranked(ids, seed)
    val = [case_id for i, case_id in enumerate(ranked) if i % k == fold]
    train = [case_id for i, case_id in enumerate(ranked) if i % k != fold]
    return sorted(train), sorted(val)
