"""Model files: info travels inside the .keras archive; written atomically and readable."""

import os
import stat

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.modelfile import load_model, read_info, save_model


def test_info_round_trip_and_plain_keras_load(tmp_path):
    model = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2, depth=1,
                           base_filters=2)
    path = tmp_path / "m.keras"
    save_model(model, path, {"class_names": ["bg", "fg"], "stride": 2})
    assert read_info(path) == {"class_names": ["bg", "fg"], "stride": 2}
    loaded, info = load_model(path)
    x = np.ones((1, 8, 8, 1), "float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The archive is still an ordinary .keras file.
    plain = keras.saving.load_model(path)
    assert plain.count_params() == model.count_params()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        model = kerasseg.build("unet", input_shape=(8, 8, 1), num_classes=2, depth=1,
                               base_filters=2)
        save_model(model, tmp_path / "m.keras")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.keras").st_mode) == 0o644


def test_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="must end with '.keras'"):
        save_model(None, tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        read_info(tmp_path / "missing.keras")
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="not a .keras model archive"):
        read_info(tmp_path / "bad.keras")
