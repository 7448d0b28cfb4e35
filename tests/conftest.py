"""Where the tests find their data: the bundled sample, and the real data sets when present.

The bundled hippocampus sample (``kerasseg/sample/hippocampus``, 52 Decathlon cases) ships
with kerasseg, so every test that a few real MRI cases suffice for runs everywhere. The real
data sets are read from the folder ``$KERASSEG_DATA`` names, or else ``../shared/data``
beside the repository:

* ``msd_hippocampus/``: the Decathlon hippocampus training set (208 cases);
* ``isbi2012_membrane/train/``: the ISBI 2012 EM images (``image/``) and masks (``label/``).

They are read-only. A test that needs one of them takes the fixture (``hippocampus_dir``,
``isbi_dir``, ``shared_data``), which skips the test, saying where the data was looked for,
when it is absent. Module-level checks import the paths: ``from tests.conftest import
HIPPOCAMPUS``.
"""

import os
import pathlib

import pytest

from kerasseg.sample import hippocampus_path

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA_ROOT = pathlib.Path(os.environ.get("KERASSEG_DATA") or REPO_ROOT.parent / "shared" / "data")
HIPPOCAMPUS = DATA_ROOT / "msd_hippocampus"
ISBI_TRAIN = DATA_ROOT / "isbi2012_membrane" / "train"
SAMPLE = pathlib.Path(hippocampus_path())


def need_data(path):
    """``path`` if it is a folder; else skip the calling test, saying where data is looked for."""
    path = pathlib.Path(path)
    if not path.is_dir():
        pytest.skip(
            f"real data not found at {path}: set KERASSEG_DATA to the folder that holds "
            f"msd_hippocampus/ and isbi2012_membrane/ (default ../shared/data beside the "
            f"repository)"
        )
    return path


@pytest.fixture(scope="session")
def shared_data():
    """The folder of the real data sets (``$KERASSEG_DATA`` or ``../shared/data``)."""
    return need_data(DATA_ROOT)


@pytest.fixture(scope="session")
def hippocampus_dir():
    """The Decathlon hippocampus training set, all 208 cases."""
    return need_data(HIPPOCAMPUS)


@pytest.fixture(scope="session")
def isbi_dir():
    """The ISBI 2012 training folder (``image/`` and ``label/``, 30 EM images)."""
    return need_data(ISBI_TRAIN)


@pytest.fixture(scope="session")
def sample_dir():
    """The bundled hippocampus sample (Decathlon layout, 52 cases); always present."""
    assert (SAMPLE / "dataset.json").is_file(), f"the bundled sample is missing from {SAMPLE}"
    return SAMPLE


@pytest.fixture(scope="session")
def sample(sample_dir):
    """The bundled hippocampus sample, loaded once per session."""
    from kerasseg.data import load_dataset

    return load_dataset(sample_dir)
