"""The package keeps its layers (.importlinter): no import goes up a layer, none goes round a
cycle, whether written at the top of a module or inside a function."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"


def _lint(root):
    """Run import-linter on the kerasseg package under ``root``; return (exit code, output)."""
    code = ("import sys\nfrom importlinter.cli import lint_imports\n"
            f"sys.exit(lint_imports(config_filename={str(CONFIG)!r}, no_cache=True, no_logo=True))")
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                            text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def test_the_package_keeps_its_layers():
    code, output = _lint(ROOT)
    assert code == 0, output
    assert "2 kept, 0 broken" in output, output


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory):
    """The package's Python files, copied (without the sample data) for editing."""
    root = tmp_path_factory.mktemp("source")
    for path in (ROOT / "kerasseg").rglob("*.py"):
        target = root / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return root


@pytest.mark.parametrize("module, added, expected", [
    # models -> zoo -> modelfile -> ...: the cycle that imports inside functions once hid.
    ("models/build.py", "def _weights(name):\n    from kerasseg import zoo\n    return zoo.fetch(name)\n",
     "kerasseg.models is not allowed to import kerasseg.zoo"),
    ("modelfile.py", "def _state(path):\n    from kerasseg.training import keeper\n    return keeper\n",
     "kerasseg.modelfile is not allowed to import kerasseg.training"),
    ("export/tflite.py", "from kerasseg.training import keeper\n",
     "kerasseg.export is not allowed to import kerasseg.training"),
    # Two packages of one layer are independent, also through the package root.
    ("data/io.py", "def _version():\n    import kerasseg\n    return kerasseg.models\n",
     "kerasseg.data is not allowed to import kerasseg.models"),
    ("plan/planner.py", "def _version():\n    from kerasseg import __version__\n    return __version__\n",
     "kerasseg.plan is not allowed to import kerasseg.training"),
    # A cycle inside one package.
    ("data/types.py", "def _reader():\n    from kerasseg.data import io\n    return io\n",
     "No cycles are allowed in kerasseg.data"),
])
def test_an_import_against_the_layers_breaks_the_contract(source_copy, module, added, expected):
    path = source_copy / "kerasseg" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n\n" + added)
        code, output = _lint(source_copy)
    finally:
        path.write_text(original)
    assert code == 1, output
    assert expected in output, output


def test_a_new_module_must_be_placed_in_a_layer(source_copy):
    path = source_copy / "kerasseg" / "helpers.py"
    path.write_text("X = 1\n")
    try:
        code, output = _lint(source_copy)
    finally:
        path.unlink()
    assert code == 1, output
    assert "kerasseg.helpers" in output, output
