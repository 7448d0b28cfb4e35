"""The built wheel carries what an install needs: the zoo's weights, cards and golden outputs
and the hippocampus sample, so ``kerasseg predict --model NAME`` works from any folder with
no checkout and no network.

The wheel is built from a copy of the package's files (the checkout gets no ``build/``),
without build isolation or an index, and installed without dependencies into a temporary
virtual environment that sees this environment's site-packages through a ``.pth`` file, so
TensorFlow is not installed again.
"""

import ast
import json
import os
import pathlib
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np

from kerasseg import zoo
from kerasseg.data.io import read_label

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What setup.py reads besides the package (each is copied when the checkout has it).
BUILD_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
ENTRY = "hippocampus-unet"


def _package_data():
    """The ``package_data`` that setup.py passes to ``setup()``, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    assigned = {target.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "package_data":
                    value = keyword.value
                    if isinstance(value, ast.Name):
                        value = assigned[value.id]
                    return ast.literal_eval(value)
    raise AssertionError("setup.py passes no package_data to setup()")


def _matched_files(package, pattern):
    """The files that setuptools' ``package_data`` glob ``pattern`` takes from ``package``."""
    folder = ROOT / package.replace(".", "/")
    return {path for path in folder.glob(pattern) if path.is_file()}


def _registry_files(record):
    """An entry's files in the package: weights, card, per-case metrics and golden output
    (an ensemble entry, whose members' files are theirs: card and per-case metrics)."""
    name = record["name"]
    if "ensemble" in record:
        return [record["card"], f"{name}.metrics.json"]
    return [record["file"], record["card"], f"{name}.metrics.json", f"{name}.golden.npz"]


def _shipped_registry():
    with open(zoo.REGISTRY, encoding="utf-8") as handle:
        return json.load(handle)["entries"]


def test_every_package_data_pattern_matches_a_file():
    for package, patterns in _package_data().items():
        for pattern in patterns:
            assert _matched_files(package, pattern), (
                f"setup.py's package_data pattern {pattern!r} of {package!r} matches no file")


def test_every_data_file_of_the_package_is_in_package_data():
    shipped = set()
    for package, patterns in _package_data().items():
        for pattern in patterns:
            shipped |= _matched_files(package, pattern)
    data = {path for path in (ROOT / "kerasseg").rglob("*") if path.is_file()
            and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts}
    missing = sorted(str(path.relative_to(ROOT)) for path in data - shipped)
    assert not missing, f"files in the package that the wheel would leave out: {missing}"


def test_every_registry_entry_has_its_files_in_the_package():
    entries = _shipped_registry()
    assert entries
    weights = pathlib.Path(zoo.WEIGHTS)
    assert weights == ROOT / "kerasseg" / "zoo" / "weights"
    shipped = set()
    for package, patterns in _package_data().items():
        for pattern in patterns:
            shipped |= _matched_files(package, pattern)
    for record in entries:
        for name in _registry_files(record):
            path = weights / name
            assert path.is_file(), f"{record['name']}: {path} is missing"
            assert path in shipped, f"{record['name']}: no package_data pattern ships {path}"
        if "ensemble" not in record:
            assert zoo.sha256(weights / record["file"]) == record["sha256"]


def _run(command, timeout, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _build_wheel(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "kerasseg", source / "kerasseg",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet", "-w", str(dist), str(source)], timeout=300)
    [wheel] = dist.glob("kerasseg-*.whl")
    return wheel


def _venv(tmp_path, wheel):
    """A fresh virtual environment with the wheel installed, seeing this one's packages."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    # This environment's pip installs into the new one; its site-packages are added only
    # afterwards, so pip does not see (or touch) the kerasseg installed here.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)], timeout=300)
    purelib = pathlib.Path(sysconfig.get_path("purelib", vars={"base": str(venv),
                                                               "platbase": str(venv)}))
    assert (purelib / "kerasseg" / "__init__.py").is_file()
    parents = dict.fromkeys(site.getsitepackages() + [sysconfig.get_path("purelib"),
                                                      sysconfig.get_path("platlib")])
    # Plain path lines: the .pth files there (such as an editable kerasseg's) are not run.
    (purelib / "zz_parent_environment.pth").write_text("\n".join(parents) + "\n")
    return venv, purelib


def test_installed_wheel_predicts_with_a_zoo_entry_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for record in _shipped_registry():
        for name in _registry_files(record):
            assert f"kerasseg/zoo/weights/{name}" in names
    assert "kerasseg/zoo/registry.json" in names

    venv, purelib = _venv(tmp_path, wheel)
    installed = purelib / "kerasseg"
    golden = np.load(installed / "zoo" / "weights" / f"{ENTRY}.golden.npz")
    case_id = str(golden["case_id"])
    image = installed / "sample" / "hippocampus" / "imagesTr" / f"{case_id}.nii.gz"
    assert image.is_file(), f"the golden case {case_id} is not in the installed sample"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "KERASSEG_ZOO_DIR",
                          "KERASSEG_ZOO_REGISTRY", "KERASSEG_ZOO_URL", "no_proxy", "NO_PROXY")}
    # No network: any HTTP(S) request would go to a closed local port and fail.
    env.update(KERASSEG_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="2",
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    python = str(venv / "bin" / "python")
    origin = _run([python, "-c", "import importlib.util; "
                   "print(importlib.util.find_spec('kerasseg').origin)"],
                  timeout=60, cwd=elsewhere, env=env).stdout.strip()
    assert pathlib.Path(origin) == installed / "__init__.py"

    _run([str(venv / "bin" / "kerasseg"), "predict", "--model", ENTRY, "--input", str(image),
          "--output", "predictions"], timeout=300, cwd=elsewhere, env=env)
    predicted, _ = read_label(str(elsewhere / "predictions" / image.name))
    expected = golden["labels"]
    assert predicted.shape == expected.shape
    assert np.mean(predicted == expected) >= 0.999
    assert not cache.exists() or not any(cache.iterdir()), "the entry was downloaded or cached"
