"""Model files: info travels inside the .keras archive; written atomically and readable."""

import os
import stat

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.description import ModelInfo, Preprocessing
from kerasseg.modelfile import INFO_MEMBER, compact_model, load_model, read_info, save_model


def _info(class_names=("bg", "fg"), stride=2, **fields):
    return ModelInfo(model="unet", num_classes=len(class_names), channels=1,
                     preprocessing=Preprocessing(mode="2d"), patch_size=(8, 8), stride=stride,
                     class_names=class_names, **fields)


def test_info_round_trip_and_plain_keras_load(tmp_path):
    model = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2, depth=1,
                           base_filters=2)
    path = tmp_path / "m.keras"
    save_model(model, path, _info())
    assert read_info(path) == _info()
    loaded, info = load_model(path)
    assert info == _info() and info.class_names == ("bg", "fg")
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


def test_compact_model_float32_is_lossless_and_float16_rounds_weights(tmp_path):
    model = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=3, depth=2,
                           base_filters=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((2, 16, 16, 1), "float32"), np.zeros((2, 16, 16), "int32"), verbose=0)
    source = tmp_path / "m.keras"
    save_model(model, source, _info(["a", "b", "c"]))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    expected = model.predict(x, verbose=0)

    size32 = compact_model(source, tmp_path / "m32.keras")
    size16 = compact_model(source, tmp_path / "m16.keras", weights_dtype="float16")
    # The optimizer's two Adam slots per weight are left out: about a third of the size.
    assert size32 == os.path.getsize(tmp_path / "m32.keras") < 0.4 * os.path.getsize(source)
    # Half-precision weights take about half the bytes of the float32 copy.
    assert size16 < 0.6 * size32
    loaded32, info32 = load_model(tmp_path / "m32.keras")
    assert getattr(load_model(tmp_path / "m32.keras", compile=True)[0], "optimizer", None) is None
    np.testing.assert_array_equal(loaded32.predict(x, verbose=0), expected)
    assert info32 == _info(["a", "b", "c"], weights_storage="float32")

    loaded16, info16 = load_model(tmp_path / "m16.keras")
    assert info16.weights_storage == "float16"
    assert all(w.dtype == "float32" for w in loaded16.weights)
    # Every weight equals the original rounded to float16, nothing more.
    for original, stored in zip(model.weights, loaded16.weights):
        np.testing.assert_array_equal(
            stored.numpy(), original.numpy().astype("float16").astype("float32"))
    np.testing.assert_allclose(loaded16.predict(x, verbose=0), expected, rtol=5e-3, atol=5e-3)


def test_compact_model_refuses_bad_arguments(tmp_path):
    model = kerasseg.build("unet", input_shape=(8, 8, 1), num_classes=2, depth=1, base_filters=2)
    save_model(model, tmp_path / "m.keras", _info())
    with pytest.raises(ValueError, match="`weights_dtype` must be 'float32' or 'float16'"):
        compact_model(tmp_path / "m.keras", tmp_path / "c.keras", weights_dtype="int8")
    with pytest.raises(ValueError, match="must be a new file ending in '.keras'"):
        compact_model(tmp_path / "m.keras", tmp_path / "m.keras")
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        compact_model(tmp_path / "missing.keras", tmp_path / "c.keras")
    with pytest.raises(ValueError, match="`info_updates` must be None or a dict"):
        compact_model(tmp_path / "m.keras", tmp_path / "c.keras", info_updates=[("a", 1)])
    with pytest.raises(ValueError, match=r"`info_updates` must hold valid ModelInfo fields: "
                                         r"`ModelInfo` holds unknown field\(s\) \['a'\]"):
        compact_model(tmp_path / "m.keras", tmp_path / "c.keras", info_updates={"a": 1})
    with pytest.raises(ValueError, match="`ModelInfo.stride` must be a positive integer"):
        compact_model(tmp_path / "m.keras", tmp_path / "c.keras", info_updates={"stride": 0})
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_compact_model_sets_the_info_updates(tmp_path):
    model = kerasseg.build("unet", input_shape=(8, 8, 1), num_classes=2, depth=1, base_filters=2)
    save_model(model, tmp_path / "m.keras", _info(["a", "b"]))
    compact_model(tmp_path / "m.keras", tmp_path / "c.keras",
                  info_updates={"shift_offsets": [[0, 0], [2, 2]], "stride": 4})
    assert read_info(tmp_path / "c.keras") == _info(
        ["a", "b"], stride=4, shift_offsets=[(0, 0), (2, 2)], weights_storage="float32")
    assert read_info(tmp_path / "m.keras") == _info(["a", "b"])


def test_compact_model_writes_a_mixed_precision_model_with_float32_policies(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=3, depth=2,
                               base_filters=8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.dtype_policy.name for layer in model.layers} == {"mixed_bfloat16", "float32"}
    save_model(model, tmp_path / "mixed.keras", _info(["a", "b", "c"]))
    compact_model(tmp_path / "mixed.keras", tmp_path / "plain.keras")

    loaded, info = load_model(tmp_path / "plain.keras")
    assert info.trained_policy == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    # The same float32 variables, now computed in float32: equal to a float32 build given
    # the mixed model's weights.
    reference = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=3, depth=2,
                               base_filters=8)
    reference.set_weights(model.get_weights())
    x = np.random.default_rng(1).normal(size=(1, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), reference.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0),
                           rtol=1e-5, atol=1e-6)


def test_float32_model_rebuilds_a_mixed_model_with_the_same_weights():
    import keras
    import numpy as np

    import kerasseg
    from kerasseg.modelfile import float32_model

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = kerasseg.build("unet", input_shape=(None, None, 2), num_classes=3, depth=2,
                               base_filters=4, normalization="instance")
    finally:
        keras.config.set_dtype_policy("float32")
    plain = float32_model(mixed)
    assert plain is not mixed
    assert {layer.compute_dtype for layer in plain.layers} == {"float32"}
    for a, b in zip(mixed.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 2)).astype(np.float32)
    gap = np.abs(keras.ops.convert_to_numpy(mixed(x)).astype(np.float32)
                 - keras.ops.convert_to_numpy(plain(x)))
    assert 0 < gap.max() < 0.1  # bfloat16 rounding, nothing more
    assert float32_model(plain) is plain


def test_a_file_without_info_and_invalid_info(tmp_path):
    model = kerasseg.build("unet", input_shape=(8, 8, 1), num_classes=2, depth=1, base_filters=2)
    save_model(model, tmp_path / "plain.keras")
    assert read_info(tmp_path / "plain.keras") is None
    assert load_model(tmp_path / "plain.keras")[1] is None
    with pytest.raises(ValueError, match="holds no kerasseg model info"):
        compact_model(tmp_path / "plain.keras", tmp_path / "c.keras")
    # save_model validates a dict as a ModelInfo; a file with bad info names file and field.
    with pytest.raises(ValueError, match=r"`ModelInfo.patch_size` must be \(height, width\)"):
        save_model(model, tmp_path / "bad.keras", {**_info().to_dict(), "patch_size": [8]})
    import json
    import zipfile

    with zipfile.ZipFile(tmp_path / "plain.keras", "a") as archive:
        archive.writestr(INFO_MEMBER, json.dumps({**_info().to_dict(), "num_classes": "two"}))
    with pytest.raises(ValueError, match=r"plain.keras: `ModelInfo.num_classes` must be a "
                                         "positive integer"):
        read_info(tmp_path / "plain.keras")


def test_the_stored_member_is_the_info_dict(tmp_path):
    import json
    import zipfile

    model = kerasseg.build("unet", input_shape=(8, 8, 1), num_classes=2, depth=1, base_filters=2)
    save_model(model, tmp_path / "m.keras", _info())
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        stored = json.loads(archive.read(INFO_MEMBER))
    assert stored == _info().to_dict() and stored["schema_version"] == ModelInfo.SCHEMA_VERSION
