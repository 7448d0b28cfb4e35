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


def test_readme_plan_output_is_the_planner_s():
    """The README's `kerasseg plan` example is what the planner prints for that data."""
    from kerasseg.data import load_dataset
    from kerasseg.plan import fingerprint, plan_training

    data = ROOT.parent / "shared" / "data" / "msd_hippocampus"
    if not data.is_dir():
        pytest.skip(f"the hippocampus data is not at {data}")
    plan = plan_training(fingerprint(load_dataset(data)), "unet", given={"budget": 1200.0})
    assert "$ kerasseg plan --data ../shared/data/msd_hippocampus --budget 20m\n" + \
        plan.table() + "\n```" in (ROOT / "README.md").read_text()
