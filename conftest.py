"""Settings for every test run from the repository root, the docstrings' examples included.

``pytest.ini`` collects the examples in kerasseg's docstrings as doctests
(``--doctest-modules``). Each example runs in a fresh temporary working folder, so that
the files it writes (models, reports, settings) never land in the checkout; it sees ``np``
and ``kerasseg`` as a user's session would, and a model family it registers is removed
again when it ends.
"""

import numpy as np
import pytest

import kerasseg
from kerasseg.models import registry


@pytest.fixture(autouse=True)
def _doctest_isolation(request):
    """Run each docstring example in its own working folder, with the registry restored."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    request.getfixturevalue("doctest_namespace").update(np=np, kerasseg=kerasseg)
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    tables = (registry._BUILDERS, registry._ALIASES, registry._STRIDES, registry._SPATIAL_DIMS)
    saved = [dict(table) for table in tables]
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)
