"""The README's model table is what the code counts, and its commands are the CI's."""

import pathlib
import re

import pytest

from kerasseg.models.summary import markdown_table

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_model_table_matches_the_models():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, (
        "README's model table is stale; regenerate it with `python -m kerasseg.models.summary`"
    )


def test_readme_commands():
    readme = (ROOT / "README.md").read_text()
    main_job = 'pip install -e . && python examples/quickstart.py'
    tests = 'pip install -e ".[test]" && python -m pytest'
    assert main_job in readme and tests in readme
    assert tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", ["unet", "fcn8s", "deeplab"])
def test_readme_mentions_every_family(name):
    assert re.search(rf"`{name}`", (ROOT / "README.md").read_text())
