"""The zoo registry logic, on a registry and weights made in the test, and the shipped entries
resolved inside the package (no network: downloads read file:// URLs)."""

import hashlib
import json
import os
import pathlib

import numpy as np
import pytest

import kerasseg
from kerasseg import zoo
from kerasseg.cli import main
from kerasseg.sample import hippocampus_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("zoo_run")
    return kerasseg.train(hippocampus_path(), "unet", output_dir=output, epochs=1,
                          steps_per_epoch=1, batch_size=4, verbose=0, evaluate=False,
                          model_options={"depth": 2, "base_filters": 4}).best_model


@pytest.fixture
def registry(trained, tmp_path, monkeypatch):
    """A registry with one entry whose file sits in a zoo folder, plus a URL to a copy."""
    zoo_dir, remote, cache = tmp_path / "zoo", tmp_path / "remote", tmp_path / "cache"
    for folder in (zoo_dir, remote, cache):
        folder.mkdir()
    data = pathlib.Path(trained).read_bytes()
    (zoo_dir / "tiny-unet.keras").write_bytes(data)
    (remote / "tiny-unet.keras").write_bytes(data)
    model = kerasseg.modelfile.load_model(trained)[0]
    record = {"name": "tiny-unet", "arch": "unet", "file": "tiny-unet.keras",
              "sha256": zoo.sha256(zoo_dir / "tiny-unet.keras"), "size": len(data),
              "url": (remote / "tiny-unet.keras").as_uri(), "params": model.count_params(),
              "metrics": {"mean_dice": 0.5}}
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"version": 1, "entries": [record]}))
    monkeypatch.setenv("KERASSEG_ZOO_REGISTRY", str(path))
    monkeypatch.setenv("KERASSEG_ZOO_DIR", str(zoo_dir))
    monkeypatch.setenv("KERASSEG_CACHE", str(cache))
    return {"zoo": zoo_dir, "remote": remote, "cache": cache, "record": record, "path": path}


def test_shipped_registry_is_valid_json():
    with open(zoo.REGISTRY) as handle:
        assert "entries" in json.load(handle)


def test_entries_and_unknown_name(registry):
    assert zoo.list_entries() == ["tiny-unet"]
    with pytest.raises(ValueError, match=r"must be one of the zoo entries \['tiny-unet'\]"):
        zoo.entry("brain-unet")


def test_fetch_prefers_the_zoo_folder(registry):
    assert zoo.fetch("tiny-unet") == str(registry["zoo"] / "tiny-unet.keras")


def test_fetch_downloads_with_hash_check(registry):
    os.remove(registry["zoo"] / "tiny-unet.keras")
    path = zoo.fetch("tiny-unet")
    assert pathlib.Path(path).parent == registry["cache"]
    assert zoo.sha256(path) == registry["record"]["sha256"]
    assert os.listdir(registry["cache"]) == ["tiny-unet.keras"]  # no staging file left


def test_shipped_entries_resolve_inside_the_package(monkeypatch):
    for variable in ("KERASSEG_ZOO_DIR", "KERASSEG_ZOO_REGISTRY", "KERASSEG_ZOO_URL"):
        monkeypatch.delenv(variable, raising=False)
    assert zoo.weights_dir() == zoo.WEIGHTS == os.path.join(
        os.path.dirname(zoo.__file__), "weights")
    path = zoo.fetch("hippocampus-unet")
    assert os.path.dirname(path) == zoo.WEIGHTS
    assert zoo.card("hippocampus-unet").startswith("# hippocampus-unet")


def _remote(tmp_path, data):
    source = tmp_path / "remote" / "file.keras"
    source.parent.mkdir()
    source.write_bytes(data)
    return source.as_uri()


def test_download_stages_then_renames(tmp_path, monkeypatch):
    data = b"weights" * 1000
    expected = hashlib.sha256(data).hexdigest()
    target = tmp_path / "cache" / "file.keras"
    renames = []
    replace = os.replace

    def recording_replace(source, destination):
        renames.append((source, destination, pathlib.Path(source).read_bytes()))
        replace(source, destination)

    monkeypatch.setattr(zoo.os, "replace", recording_replace)
    assert zoo.download(_remote(tmp_path, data), str(target), expected) == str(target)
    assert target.read_bytes() == data
    [(source, destination, staged)] = renames
    assert destination == str(target) and staged == data
    # A hidden staging file in the target's folder (kerasseg.files.atomic_path).
    assert os.path.dirname(source) == str(target.parent)
    assert os.path.basename(source).startswith(".file.keras.") and source.endswith(".part")
    assert os.listdir(target.parent) == ["file.keras"]


def test_download_with_another_hash_is_discarded(tmp_path):
    target = tmp_path / "cache" / "file.keras"
    with pytest.raises(ValueError, match="was discarded"):
        zoo.download(_remote(tmp_path, b"corrupt"), str(target), "0" * 64)
    assert os.listdir(target.parent) == []


def test_download_failure_leaves_no_file(tmp_path):
    target = tmp_path / "cache" / "file.keras"
    missing = (tmp_path / "nowhere.keras").as_uri()
    with pytest.raises(OSError, match="Downloading .*nowhere.keras.* failed"):
        zoo.download(missing, str(target), "0" * 64)
    assert os.listdir(target.parent) == []


def test_a_corrupt_download_is_not_cached(registry):
    os.remove(registry["zoo"] / "tiny-unet.keras")
    (registry["remote"] / "tiny-unet.keras").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="was discarded"):
        zoo.fetch("tiny-unet")
    assert os.listdir(registry["cache"]) == []


def test_wrong_hash_is_refused(registry):
    with open(registry["zoo"] / "tiny-unet.keras", "ab") as handle:
        handle.write(b"corrupt")
    with pytest.raises(ValueError, match="does not match the zoo registry"):
        zoo.fetch("tiny-unet")


def test_missing_file_without_url(registry):
    os.remove(registry["zoo"] / "tiny-unet.keras")
    record = dict(registry["record"], url=None)
    registry["path"].write_text(json.dumps({"entries": [record]}))
    with pytest.raises(FileNotFoundError, match="tiny-unet.keras of zoo entry 'tiny-unet'"):
        zoo.fetch("tiny-unet")


def test_load_and_build_with_weights_by_name(registry, trained):
    model, info = zoo.load("tiny-unet", return_info=True)
    assert info.zoo_entry == "tiny-unet" and info.class_names[1] == "Anterior"
    # The run's plan picks the input (2.5-D slices with neighbours: several channels).
    channels = int(model.input_shape[-1])
    built = kerasseg.build("unet", input_shape=(None, None, channels), num_classes=3,
                           weights="tiny-unet")
    x = np.random.default_rng(0).normal(size=(1, 48, 64, channels)).astype("float32")
    np.testing.assert_array_equal(built.predict(x, verbose=0), model.predict(x, verbose=0))


def test_incompatible_request_is_explained(registry):
    with pytest.raises(ValueError, match="incompatible with the request.*2 classes|3 classes, not 2"):
        kerasseg.build("unet", num_classes=2, weights="tiny-unet")
    with pytest.raises(ValueError, match="architecture 'unet', not 'fcn8s'"):
        kerasseg.build("fcn8s", num_classes=3, weights="tiny-unet")


def test_parameter_mismatch_is_refused(registry):
    record = dict(registry["record"], params=1)
    registry["path"].write_text(json.dumps({"entries": [record]}))
    with pytest.raises(ValueError, match="the file and registry do not match"):
        zoo.load("tiny-unet")


def test_predict_accepts_a_zoo_name(registry, tmp_path):
    source = kerasseg.data.load_dataset(hippocampus_path())[0].image_paths[0]
    assert main(["predict", "--model", "tiny-unet", "--input", source,
                 "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / os.path.basename(source)).exists()


def test_cli_zoo_list_and_info(registry, capsys):
    assert main(["zoo", "list"]) == 0
    assert "tiny-unet" in capsys.readouterr().out
    assert main(["zoo", "info", "tiny-unet"]) == 0
    assert '"arch": "unet"' in capsys.readouterr().out


def test_fetch_from_a_mirror(registry, monkeypatch):
    os.remove(registry["zoo"] / "tiny-unet.keras")
    record = dict(registry["record"], url=None)
    registry["path"].write_text(json.dumps({"entries": [record]}))
    monkeypatch.setenv("KERASSEG_ZOO_URL", registry["remote"].as_uri())
    path = zoo.fetch("tiny-unet")
    assert pathlib.Path(path).parent == registry["cache"]
    assert zoo.sha256(path) == record["sha256"]
