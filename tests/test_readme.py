"""The README agrees with the code, the data, the zoo and the benchmarks, and with itself."""

import pathlib
import re

import pytest

import kerasseg
from kerasseg.models.summary import VOLUME_SHAPE, markdown_table
from tests.conftest import REPO_ROOT as ROOT


@pytest.mark.parametrize("input_shape", [(256, 256, 1), VOLUME_SHAPE], ids=["2d", "3d"])
def test_readme_model_table_matches_the_models(input_shape):
    readme = (ROOT / "README.md").read_text()
    assert markdown_table(input_shape) in readme, (
        "README's model table is stale; regenerate it with `python -m kerasseg.models.summary`"
    )


def test_readme_commands():
    readme = (ROOT / "README.md").read_text()
    main_job = 'pip install -e . && python examples/quickstart.py'
    tests = 'pip install -e ".[test]" && python -m pytest'
    assert main_job in readme and tests in readme
    assert tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", kerasseg.list_models())
def test_readme_mentions_every_family(name):
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{name}` \|", readme, re.MULTILINE), "a row in a model table"
    assert re.search(rf"^- `{name}`", readme, re.MULTILINE), "an entry in the list of families"


def test_readme_usage_builds_a_volume_model_as_written():
    line = _one(r'volume_model = (kerasseg\.build\("unet3d", [^#]*\))', _readme(), "3-D example")
    model = eval(" ".join(line.split()), {"kerasseg": kerasseg})
    assert model.input_shape == (None, None, None, None, 1)
    assert kerasseg.models.stride_per_axis("unet3d", pool_sizes=[(1, 2, 2), 2, 2, 2]) == \
        (8, 16, 16)


def test_readme_plan_output_is_the_planner_s(hippocampus_dir):
    """The README's `kerasseg plan` example is what the planner prints for that data."""
    from kerasseg.data import load_dataset
    from kerasseg.plan import fingerprint, plan_training

    plan = plan_training(fingerprint(load_dataset(hippocampus_dir)), "unet",
                         given={"budget": 1200.0})
    assert "$ kerasseg plan --data ../shared/data/msd_hippocampus --budget 20m\n" + \
        plan.table() + "\n```" in (ROOT / "README.md").read_text()


# ------------------------------------------------------------- numbers that must agree

WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10}


def _readme():
    return (ROOT / "README.md").read_text()


def _one(pattern, text, what, flags=0):
    found = re.findall(pattern, text, flags)
    assert len(found) == 1, f"expected one {what} ({pattern!r}), found {found}"
    return found[0]


def test_quickstart_time_is_stated_once_and_matches_its_measurement():
    readme = " ".join(_readme().split())
    stated = _one(r"project \(about (\w+) minutes on two CPU cores\)", readme, "README time")
    measured = int(_one(r"(\d+) s on two CPU cores, measured", readme, "measured time"))
    docstring = (ROOT / "examples" / "quickstart.py").read_text()
    script = _one(r"It takes about (\w+) minutes on two CPU cores", " ".join(docstring.split()),
                  "quickstart.py time")
    assert stated == script, "README and examples/quickstart.py state different times"
    assert WORDS[stated] == round(measured / 60), (stated, measured)


def test_quickstart_split_matches_the_sample_and_the_script():
    from kerasseg.data import load_dataset
    from kerasseg.data.split import split_cases
    from kerasseg.sample import hippocampus_path

    readme = " ".join(_readme().split())
    cases, train, val = map(int, _one(
        r"on (\d+) bundled MRI volumes of the Decathlon hippocampus task \((\d+) for training, "
        r"(\d+) for model selection\)", readme, "quickstart split"))
    test = int(_one(r"on the (\d+) volumes held out from both", readme, "held-out count"))
    script = (ROOT / "examples" / "quickstart.py").read_text()
    fractions = _one(r"val_fraction=([\d.]+), test_fraction=([\d.]+), seed=(\d+)", script,
                     "the quickstart's split")
    ids = load_dataset(hippocampus_path()).case_ids
    split = split_cases(ids, val_fraction=float(fractions[0]), test_fraction=float(fractions[1]),
                        seed=int(fractions[2]))
    assert (cases, train, val, test) == (len(ids), len(split.train), len(split.val),
                                         len(split.test))


def test_quickstart_dice_is_the_mean_of_its_classes():
    readme = " ".join(_readme().split())
    mean, anterior, posterior = map(float, _one(
        r"Held-out mean foreground Dice ([\d.]+) \(anterior ([\d.]+), posterior ([\d.]+)\)",
        readme, "quickstart Dice"))
    assert abs(mean - (anterior + posterior) / 2) <= 0.0006


def test_data_set_sizes_agree_with_the_data_and_the_zoo():
    import json

    from kerasseg import zoo
    from kerasseg.sample import hippocampus_path

    readme = " ".join(_readme().split())
    sample = len(json.loads((pathlib.Path(hippocampus_path()) / "dataset.json").read_text())
                 ["training"])
    assert f"{sample} bundled MRI volumes" in readme
    assert f"`kerasseg/sample/hippocampus/`: {sample} cases" in readme
    shared = int(_one(r"\(`\$KERASSEG_DATA` names\): (\d+) cases of the Decathlon hippocampus "
                      r"training set", readme.replace("`../shared/data`, or the folder ", ""),
                      "shared hippocampus count"))
    assert "every fourth of them" in readme and shared == 4 * sample
    assert "full Decathlon hippocampus training set" not in readme  # a subset: 208 cases
    for name in zoo.list_entries():
        record = zoo.entry(name)
        if record["training"]["data_folder"] == "msd_hippocampus":
            assert f"({shared} labelled" in record["training"]["data"], name


def test_shared_hippocampus_count_matches_the_shared_data(hippocampus_dir):
    import json

    readme = " ".join(_readme().split())
    count = len(json.loads((hippocampus_dir / "dataset.json").read_text())["training"])
    assert f"{count} cases of the Decathlon hippocampus training set" in readme


def test_zoo_epochs_in_the_readme_are_the_registry_s():
    from kerasseg import zoo

    readme = " ".join(_readme().split())
    unet, fcn = map(int, _one(r"The U-Net and FCN-8s trained in one cosine cycle "
                              r"\((\d+) and (\d+) epochs\)", readme, "zoo epochs"))
    assert zoo.entry("hippocampus-unet")["training"]["epochs"] == unet
    assert zoo.entry("hippocampus-fcn8s")["training"]["epochs"] == fcn
    for name in ("hippocampus-unet", "hippocampus-fcn8s"):
        assert "--val-every 5" in zoo.entry(name)["training"]["command"], name
    assert zoo.entry("hippocampus-deeplab")["training"]["stages"] == 2  # "in two stages"
    assert "DeepLabv3+ in two stages" in readme


def test_model_table_flops_are_the_benchmarks():
    """The README's model table and benchmarks/RESULTS.md count the same forward FLOPs."""
    rows = re.findall(r"^\| `(\w+)` \| [\d,]+ \| ([\d.]+) \|$", _readme(), re.MULTILINE)
    assert {name for name, _ in rows} == set(kerasseg.list_models())
    # The benchmarks measure the 2-D families (images); the 3-D ones have no rows there.
    rows = [(name, gflops) for name, gflops in rows
            if name in kerasseg.list_models(spatial_dims=2)]
    assert {name for name, _ in rows} == {"unet", "fcn8s", "deeplab"}
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    for name, gflops in rows:
        measured = _one(rf"^\| {name} +\| EM 256x256x1 \(256x256x1\) +\| +\d+ \| +([\d.]+) \|",
                        results, f"{name}'s benchmark row", re.MULTILINE)
        assert measured == gflops, (name, measured, gflops)
