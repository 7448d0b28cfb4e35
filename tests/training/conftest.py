"""Shared fixtures: a tiny real data set (bundled hippocampus MRI cases) and tiny settings."""

import pytest

from kerasseg.data import load_dataset
from kerasseg.sample import hippocampus_path

TINY_UNET = {"depth": 2, "base_filters": 4}


@pytest.fixture(scope="session")
def sample():
    return load_dataset(hippocampus_path())


@pytest.fixture(scope="session")
def tiny(sample):
    """Six real cases: enough for a split, small enough for seconds-long runs."""
    return sample.subset(list(range(6)))
