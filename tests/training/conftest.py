"""Shared fixtures of the training tests: a tiny real data set (bundled hippocampus MRI cases)."""

import pytest


@pytest.fixture(scope="session")
def tiny(sample):
    """Six real cases: enough for a split, small enough for seconds-long runs."""
    return sample.subset(list(range(6)))
