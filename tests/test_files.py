"""kerasseg.files: atomic writes leave the old file or the new one, never half of one or a
temporary file; JSON keeps NaN and infinities standard and round-trips them."""

import datetime
import json
import math
import os
import pathlib
import stat
import threading

import numpy as np
import pytest

from kerasseg import files


def _listing(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------- atomic writes


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "state.bin"  # the folder is created
    assert files.write_bytes_atomic(target, b"one") == str(target)
    assert files.write_bytes_atomic(target, b"two") == str(target)
    assert target.read_bytes() == b"two"
    assert _listing(target.parent) == ["state.bin"]
    files.write_text_atomic(tmp_path / "t.csv", "a,b\r\nü\n")
    assert (tmp_path / "t.csv").read_bytes() == "a,b\r\nü\n".encode("utf-8")  # no translation


def test_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "eval.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with files.atomic_path(target, ".csv") as temp:
            assert os.path.dirname(temp) == str(tmp_path)
            assert os.path.basename(temp).startswith(".eval.csv.") and temp.endswith(".csv")
            pathlib.Path(temp).write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["eval.csv"]


def test_failed_write_of_bytes_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)  # the rename, the last step, fails
    with pytest.raises(OSError, match="disk full"):
        files.write_bytes_atomic(target, b"new contents")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["model.keras"]


def test_written_files_and_folders_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        path = files.write_text_atomic(tmp_path / "a.json", "{}")
        with files.atomic_dir(tmp_path / "1") as folder:
            pathlib.Path(folder, "x").write_text("")
        with files.atomic_files(tmp_path / "c.mhd") as temp:
            pathlib.Path(temp).write_text("")
        assert os.umask(0o027) == 0o027  # reading the umask did not change it
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "c.mhd").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "1").st_mode) == 0o750


def test_writes_from_many_threads_keep_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        threads = [threading.Thread(target=lambda i=i: [
            files.write_bytes_atomic(tmp_path / f"{i}-{j}.npy", b"x") for j in range(20)])
            for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)
    assert len(os.listdir(tmp_path)) == 160


def test_atomic_files_moves_companions_first_and_only_on_success(tmp_path):
    target = tmp_path / "case.mhd"
    with files.atomic_files(target) as temp:
        assert os.path.basename(temp) == "case.mhd" and os.path.dirname(temp) != str(tmp_path)
        pathlib.Path(temp).with_suffix(".raw").write_bytes(b"\x00\x01")
        pathlib.Path(temp).write_text("ElementDataFile = case.raw\n")
    assert _listing(tmp_path) == ["case.mhd", "case.raw"]
    with pytest.raises(RuntimeError):
        with files.atomic_files(target) as temp:
            pathlib.Path(temp).with_suffix(".raw").write_bytes(b"new")
            raise RuntimeError("interrupted")
    assert (tmp_path / "case.raw").read_bytes() == b"\x00\x01"
    assert _listing(tmp_path) == ["case.mhd", "case.raw"]


def test_atomic_dir_swaps_the_folder_in_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "model" / "1"
    with files.atomic_dir(target) as folder:
        assert os.path.basename(folder).startswith(".tmp-1-")
        pathlib.Path(folder, "saved_model.pb").write_bytes(b"v1")
    assert _listing(target) == ["saved_model.pb"]
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        with files.atomic_dir(target) as folder:
            pathlib.Path(folder, "saved_model.pb").write_bytes(b"v2")
    assert (target / "saved_model.pb").read_bytes() == b"v1"
    with pytest.raises(RuntimeError):
        with files.atomic_dir(target, overwrite=True) as folder:
            raise RuntimeError("export failed")
    assert (target / "saved_model.pb").read_bytes() == b"v1"
    with files.atomic_dir(target, overwrite=True) as folder:
        pathlib.Path(folder, "variables").mkdir()
    assert _listing(target) == ["variables"]
    assert _listing(target.parent) == ["1"]


# ----------------------------------------------------------------------------------- JSON


def test_non_finite_json_round_trip(tmp_path):
    data = {"cases": [{"dice": 0.5, "hd95": float("inf")}, {"dice": float("nan"), "hd95": 2.0}],
            "low": -math.inf, "a/b~c": float("nan"), 3: np.float32(0.25)}
    found = {}
    path = files.write_json_atomic(tmp_path / "r.json", data, sort_keys=False, non_finite=found)
    assert found == {"/cases/0/hd95": "inf", "/cases/1/dice": "nan", "/low": "-inf",
                     "/a~1b~0c": "nan"}
    text = pathlib.Path(path).read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("}\n")
    document = json.loads(text)  # standard JSON
    assert document == {"cases": [{"dice": 0.5, "hd95": None}, {"dice": None, "hd95": 2.0}],
                        "low": None, "a/b~c": None, "3": 0.25}
    restored = files.restore_non_finite(files.read_json(path), found)
    assert restored["cases"][0]["hd95"] == math.inf
    assert math.isnan(restored["cases"][1]["dice"]) and math.isnan(restored["a/b~c"])
    assert restored["low"] == -math.inf and restored["cases"][1]["hd95"] == 2.0


def test_json_conversion_of_numpy_paths_dates_and_tuples():
    value = {"array": np.array([[1, 2]], "int64"), "flag": np.bool_(True), "n": np.int32(7),
             "t": (1, "a"), "path": pathlib.Path("runs/a"), "day": datetime.date(2024, 5, 1),
             "other": object}
    out = files.to_json_compatible(value)
    assert out == {"array": [[1, 2]], "flag": True, "n": 7, "t": [1, "a"], "path": "runs/a",
                   "day": "2024-05-01", "other": str(object)}
    assert type(out["flag"]) is bool and type(out["n"]) is int
    assert files.to_json_compatible([np.float64("nan")]) == [None]  # nothing recorded


def test_restore_rejects_a_pointer_to_nothing():
    with pytest.raises(KeyError, match="/missing"):
        files.restore_non_finite({"a": None}, {"/missing": "nan"})
    with pytest.raises(ValueError, match="JSON pointer"):
        files.restore_non_finite({"a": None}, {"a": "nan"})


def test_read_json_default(tmp_path):
    assert files.read_json(tmp_path / "missing.json") is None
    assert files.read_json(tmp_path / "missing.json", default={}) == {}
