"""SavedModel export: layout, signatures, parity with Keras, atomic writes, bad input."""

import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kerasseg import export
from tests.export.helpers import CROP, build_small, png, raw_crop, zscore
from tests.export.servers import SessionServable


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def servable(unet_export):
    servable = SessionServable(unet_export[1])
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def loaded(unet_export):
    return tf.saved_model.load(unet_export[1])


# ----------------------------------------------------------------------------- layout


def test_layout_config_files_and_model_card(unet_export):
    root, version_dir = unet_export
    assert version_dir == os.path.join(str(root), "1")
    assert sorted(os.listdir(root)) == [
        "1", "MODEL_CARD.md", "batching_parameters.txt", "models.config"]
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version_dir, "variables"))

    config = text_format.Parse((root / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert entry.name == "unet"
    assert entry.base_path == "/models/unet"
    assert entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [1]

    batching = (root / "batching_parameters.txt").read_text()
    assert "max_batch_size { value: 16 }" in batching
    assert "batch_timeout_micros { value: 2000 }" in batching

    meta = export.read_export_metadata(version_dir)
    assert meta["input_size"] == [CROP, CROP]
    assert (meta["channels"], meta["num_classes"], meta["activation"]) == (1, 3, "softmax")
    assert meta["normalization"] == {"method": "zscore", "params": {"nonzero": False}}
    assert meta["signatures"]["serving_bytes"]["inputs"] == {
        "image_bytes": {"dtype": "string", "shape": [-1]}}

    card = (root / "MODEL_CARD.md").read_text()
    for needle in ("serving_default", "serving_bytes", "`image_bytes`", "`probabilities`",
                   "[-1, 64, 64, 1]", "docker run",
                   "--model_config_file=/models/unet/models.config",
                   "/v1/models/unet:predict", '"b64"'):
        assert needle in card


@pytest.mark.slow
def test_saved_model_cli_lists_signatures(unet_export):
    # TensorFlow's saved_model_cli, run by this Python whichever folder holds its script.
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run([*cli, "show", "--dir", unet_export[1], "--all"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    text = result.stdout

    def block(signature):
        start = text.index(f"signature_def['{signature}']")
        end = text.find("signature_def[", start + 1)
        return text[start:end if end > 0 else None]

    tensor = " ".join(block("serving_default").split())
    assert "inputs['image'] tensor_info: dtype: DT_FLOAT shape: (-1, 64, 64, 1)" in tensor
    assert "outputs['mask'] tensor_info: dtype: DT_INT32 shape: (-1, 64, 64)" in tensor
    assert ("outputs['probabilities'] tensor_info: dtype: DT_FLOAT shape: (-1, 64, 64, 3)"
            in tensor)
    assert "Method name is: tensorflow/serving/predict" in tensor
    encoded = " ".join(block("serving_bytes").split())
    assert "inputs['image_bytes'] tensor_info: dtype: DT_STRING shape: (-1)" in encoded
    assert "outputs['image_size'] tensor_info: dtype: DT_INT32 shape: (-1, 2)" in encoded
    assert "outputs['mask'] tensor_info: dtype: DT_INT32 shape: (-1, -1, -1)" in encoded


# ------------------------------------------------------------- parity with the model


@pytest.mark.slow
def test_reload_in_fresh_process_without_kerasseg(unet_model, unet_export, tmp_path):
    rng = np.random.RandomState(3)
    images = {f"b{n}": rng.normal(size=(n, CROP, CROP, 1)).astype(np.float32) for n in (1, 3)}
    np.savez(tmp_path / "inputs.npz", **images)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({str(unet_export[1])!r})
        fn = model.signatures["serving_default"]
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        out = {{}}
        for key in inputs.files:
            result = fn(image=tf.constant(inputs[key]))
            out[key + "_p"] = result["probabilities"].numpy()
            out[key + "_m"] = result["mask"].numpy()
        np.savez({str(tmp_path / "outputs.npz")!r}, **out)
        print("KERASSEG_LOADED" if "kerasseg" in sys.modules else "NO_KERASSEG")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NO_KERASSEG" in result.stdout
    out = np.load(tmp_path / "outputs.npz")
    for key, batch in images.items():
        expected = softmax(np.asarray(unet_model(batch, training=False)))
        probabilities, mask = out[key + "_p"], out[key + "_m"]
        assert probabilities.shape == (len(batch), CROP, CROP, 3)
        assert mask.dtype == np.int32 and mask.shape == (len(batch), CROP, CROP)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        np.testing.assert_array_equal(mask, np.argmax(probabilities, axis=-1))
        assert np.mean(mask == np.argmax(expected, axis=-1)) > 0.999


def test_bytes_signature_matches_tensor_signature_at_model_size(servable):
    raw = [raw_crop(seed) for seed in (10, 11)]
    encoded = np.array([png(image) for image in raw], dtype=object)
    by_bytes = servable.run("serving_bytes", {"image_bytes": encoded})
    by_tensor = servable.run("serving_default",
                             {"image": np.stack([zscore(image) for image in raw])})
    np.testing.assert_array_equal(by_bytes["image_size"], [[CROP, CROP], [CROP, CROP]])
    np.testing.assert_array_equal(by_bytes["mask"], by_tensor["mask"])


def test_bytes_signature_resizes_to_model_and_back(unet_model, servable):
    raw = raw_crop(20, shape=(100, 80))
    out = servable.run("serving_bytes", {"image_bytes": np.array([png(raw)], dtype=object)})
    resized = tf.image.resize(raw.astype(np.float32), (CROP, CROP), method="bilinear").numpy()
    logits = np.asarray(unet_model(zscore(resized)[None], training=False))
    small = np.argmax(logits, axis=-1)[0]
    expected = tf.image.resize(small[..., None], (100, 80), method="nearest").numpy()[..., 0]
    np.testing.assert_array_equal(out["image_size"], [[100, 80]])
    assert out["mask"].shape == (1, 100, 80)
    np.testing.assert_array_equal(out["mask"][0], expected)


def test_bytes_signature_mixed_sizes_pad_with_minus_one(servable):
    first, second = raw_crop(30, shape=(100, 80)), raw_crop(31, shape=(40, 120))
    together = servable.run("serving_bytes", {
        "image_bytes": np.array([png(first), png(second)], dtype=object)})
    np.testing.assert_array_equal(together["image_size"], [[100, 80], [40, 120]])
    assert together["mask"].shape == (2, 100, 120)
    for index, image in enumerate((first, second)):
        alone = servable.run("serving_bytes", {"image_bytes": np.array([png(image)], dtype=object)})
        h, w = image.shape[:2]
        np.testing.assert_array_equal(together["mask"][index, :h, :w], alone["mask"][0])
        padding = np.ones((100, 120), bool)
        padding[:h, :w] = False
        assert np.all(together["mask"][index][padding] == -1)


def test_bytes_signature_reads_16_bit_png_and_jpeg(servable):
    raw = raw_crop(40)
    eight = servable.run("serving_bytes", {"image_bytes": np.array([png(raw)], dtype=object)})
    # The same picture stored with 16 bits (x * 257): z-scoring removes the scale.
    sixteen_bit = tf.io.encode_png(raw.astype(np.uint16) * 257).numpy()
    assert sixteen_bit[24] == 16  # the PNG header's bit depth
    sixteen = servable.run("serving_bytes", {"image_bytes": np.array([sixteen_bit], dtype=object)})
    np.testing.assert_array_equal(sixteen["mask"], eight["mask"])

    jpeg = tf.io.encode_jpeg(raw, quality=95).numpy()
    decoded = tf.io.decode_jpeg(jpeg).numpy()
    by_bytes = servable.run("serving_bytes", {"image_bytes": np.array([jpeg], dtype=object)})
    by_tensor = servable.run("serving_default", {"image": zscore(decoded)[None]})
    np.testing.assert_array_equal(by_bytes["mask"], by_tensor["mask"])


def test_dynamic_model_pads_to_stride_and_crops_back(dynamic_model, dynamic_export):
    root, version_dir = dynamic_export
    meta = export.read_export_metadata(version_dir)
    assert meta["stride"] == 8 and meta["input_size"] is None
    assert meta["activation"] == "sigmoid" and meta["num_classes"] == 1
    servable = SessionServable(version_dir, version=3)
    try:
        raw = raw_crop(50, shape=(50, 37))
        image = raw.astype(np.float32)[None] / 255.0
        out = servable.run("serving_default", {"image": image})
        assert out["probabilities"].shape == (1, 50, 37, 1)
        padded = np.zeros((1, 56, 40, 1), np.float32)
        padded[:, :50, :37] = image
        expected = np.asarray(dynamic_model(padded, training=False))[:, :50, :37]
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(out["mask"], (out["probabilities"][..., 0] > 0.5))

        # A size that is already a multiple of the stride goes through unchanged.
        exact = raw_crop(51, shape=(48, 40)).astype(np.float32)[None] / 255.0
        out = servable.run("serving_default", {"image": exact})
        np.testing.assert_allclose(out["probabilities"],
                                   np.asarray(dynamic_model(exact, training=False)), atol=1e-5)

        encoded = servable.run("serving_bytes",
                               {"image_bytes": np.array([png(raw)], dtype=object)})
        np.testing.assert_array_equal(encoded["image_size"], [[50, 37]])
        np.testing.assert_array_equal(encoded["mask"][0], (expected[0, ..., 0] > 0.5))
    finally:
        servable.close()


@pytest.mark.parametrize("family", ["fcn8s", "deeplab"])
def test_other_families_export_and_match_keras(family, tmp_path):
    model = build_small(family, input_shape=(CROP, CROP, 1), num_classes=2)
    version_dir = export.saved_model(model, tmp_path / family, version=1)
    images = np.random.RandomState(5).normal(size=(2, CROP, CROP, 1)).astype(np.float32)
    out = tf.saved_model.load(version_dir).signatures["serving_default"](image=tf.constant(images))
    expected = softmax(np.asarray(model(images, training=False)))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert np.mean(out["mask"].numpy() == np.argmax(expected, -1)) > 0.999


# ---------------------------------------------------------------------- bad input


def _error(servable, signature, inputs):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        servable.run(signature, inputs)
    return info.value.message


@pytest.mark.parametrize("shape", [(1, CROP, CROP, 3), (CROP, CROP, 1), (2, 32, 32, 1),
                                   (1, CROP, CROP, 1, 1)])
def test_tensor_signature_rejects_wrong_shapes(servable, shape):
    message = _error(servable, "serving_default", {"image": np.zeros(shape, np.float32)})
    assert f"[{','.join(str(s) for s in shape)}]" in message
    assert "is not compatible with expected shape [?,64,64,1]" in message


def test_tensor_signature_rejects_wrong_dtype(servable):
    message = _error(servable, "serving_default", {"image": np.zeros((1, CROP, CROP, 1), np.uint8)})
    assert "Expects arg[0] to be float but uint8 is provided" in message


def test_tf2_call_rejects_wrong_shape_with_expected_shape(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        loaded.signatures["serving_default"](image=tf.zeros([1, CROP, CROP, 3]))
    assert ("Shape of tensor image [1,64,64,3] is not compatible with expected shape "
            "[?,64,64,1]") in info.value.message


@pytest.mark.parametrize(
    "payload,expected",
    [
        (b"not an image at all", "`image_bytes` must hold PNG or JPEG files"),
        (b"", "`image_bytes` must hold PNG or JPEG files"),
        ("truncated", "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        ("rgb", "the model takes images with 1 channel(s)"),
    ],
)
def test_bytes_signature_rejects_corrupt_or_wrong_images(servable, payload, expected):
    if payload == "truncated":
        payload = png(raw_crop(60))[:60]
    elif payload == "rgb":
        payload = png(raw_crop(61, channels=3))
    message = _error(servable, "serving_bytes", {"image_bytes": np.array([payload], dtype=object)})
    assert expected in message


def test_bytes_signature_rejects_bad_batches(servable):
    message = _error(servable, "serving_bytes", {"image_bytes": np.array([[png(raw_crop(62))]],
                                                                         dtype=object)})
    assert "is not compatible with expected shape [?]" in message
    message = _error(servable, "serving_bytes", {"image_bytes": np.array([], dtype=object)})
    assert "must hold at least one encoded image" in message
    message = _error(servable, "serving_bytes", {"image_bytes": np.zeros((1,), np.float32)})
    assert "Expects arg[0] to be string but float is provided" in message


# -------------------------------------------------------------- files and arguments


def test_versions_overwrite_and_atomic_failure(unet_model, tmp_path, monkeypatch):
    root = tmp_path / "seg"
    export.saved_model(unet_model, root, version=1, bytes_signature=False, batching=False)
    export.saved_model(unet_model, root, version=2, bytes_signature=False, batching=False)
    config = (root / "models.config").read_text()
    assert "versions: 1" in config and "versions: 2" in config
    assert not (root / "batching_parameters.txt").exists()
    signatures = tf.saved_model.load(str(root / "2")).signatures
    assert sorted(signatures) == ["serving_default"]

    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        export.saved_model(unet_model, root, version=1)
    before = os.path.getmtime(root / "1" / "saved_model.pb")
    export.saved_model(unet_model, root, version=1, overwrite=True, bytes_signature=False,
                       batching=False)
    assert os.path.getmtime(root / "1" / "saved_model.pb") >= before

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    # (kerasseg.export.saved_model is the function; the module is reached by its path.)
    module = importlib.import_module("kerasseg.export.saved_model")
    monkeypatch.setattr(module.tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export.saved_model(unet_model, root, version=3, bytes_signature=False)
    assert sorted(os.listdir(root)) == ["1", "2", "MODEL_CARD.md", "models.config"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"version": 0}, "`version` must be a positive int. Received: version=0"),
        ({"model_name": "bad name"}, "`model_name` must start with a letter or digit"),
        ({"normalization": {"method": "robust"}}, "`normalization['method']` must be one of"),
        ({"normalization": {"method": "fixed", "mean": [1, 2], "std": 1}},
         "`mean` must be one number or one per channel (1)"),
        ({"input_size": (32, 32)}, "`input_size` must be None or the model's fixed size (64, 64)"),
        ({"input_size": (32,)}, "`input_size` must be None or (height, width) positive ints"),
        ({"bytes_signature": "yes"}, "`bytes_signature` must be one of [None, True, False]"),
        ({"output_activation": "relu"}, "`output_activation` must be one of"),
        ({"serving_base_path": "models"}, "`serving_base_path` must be an absolute path"),
    ],
)
def test_invalid_arguments(unet_model, tmp_path, kwargs, message):
    with pytest.raises(ValueError) as info:
        export.saved_model(unet_model, tmp_path / "m", **{"version": 1, **kwargs})
    assert message in str(info.value)
    assert not (tmp_path / "m").exists() or not os.listdir(tmp_path / "m")


def test_bytes_signature_needs_decodable_channels(tmp_path):
    model = build_small("unet", input_shape=(32, 32, 2), num_classes=2)
    with pytest.raises(ValueError, match="needs a model with 1, 3 or 4 input channels"):
        export.saved_model(model, tmp_path / "two", bytes_signature=True)
    version_dir = export.saved_model(model, tmp_path / "two")
    assert list(export.read_export_metadata(version_dir)["signatures"]) == ["serving_default"]


def test_model_config_for_several_models_and_labels(tmp_path):
    path = export.write_model_config(tmp_path / "models.config", [
        export.ModelEntry("unet", versions=[2, 1], labels={"stable": 1, "canary": 2}),
        {"name": "fcn8s", "base_path": "/srv/models/fcn8s", "versions": "all"},
        export.ModelEntry("deeplab"),
    ])
    config = text_format.Parse(open(path).read(), model_server_config_pb2.ModelServerConfig())
    unet, fcn, deeplab = config.model_config_list.config
    assert list(unet.model_version_policy.specific.versions) == [1, 2]
    assert dict(unet.version_labels) == {"stable": 1, "canary": 2}
    assert fcn.base_path == "/srv/models/fcn8s" and fcn.model_version_policy.HasField("all")
    assert deeplab.base_path == "/models/deeplab"
    assert not deeplab.HasField("model_version_policy")
    with pytest.raises(ValueError, match="distinct names"):
        export.write_model_config(tmp_path / "x.config", [export.ModelEntry("a"),
                                                          export.ModelEntry("a")])
    with pytest.raises(ValueError, match="`versions` must be"):
        export.write_model_config(tmp_path / "x.config", [export.ModelEntry("a", versions=[])])


def test_batching_config_values(tmp_path):
    path = export.write_batching_config(tmp_path / "b.txt", max_batch_size=8,
                                        batch_timeout_micros=500, num_batch_threads=2,
                                        allowed_batch_sizes=[2, 4, 8])
    lines = [line for line in open(path).read().splitlines() if not line.startswith("#")]
    assert lines == [
        "max_batch_size { value: 8 }",
        "batch_timeout_micros { value: 500 }",
        "max_enqueued_batches { value: 100 }",
        "num_batch_threads { value: 2 }",
        "allowed_batch_sizes: 2",
        "allowed_batch_sizes: 4",
        "allowed_batch_sizes: 8",
    ]
    with pytest.raises(ValueError, match="`max_batch_size` must be an int >= 1"):
        export.write_batching_config(tmp_path / "b.txt", max_batch_size=0)
    with pytest.raises(ValueError, match="`allowed_batch_sizes` must be increasing"):
        export.write_batching_config(tmp_path / "b.txt", max_batch_size=8,
                                     allowed_batch_sizes=[4, 2])


def test_untraceable_dynamic_model_asks_for_input_size(tmp_path):
    model = build_small("deeplab", input_shape=(None, None, 1), num_classes=2)
    try:
        version_dir = export.saved_model(model, tmp_path / "deeplab")
    except ValueError as error:
        # Keras' bilinear UpSampling2D needs static sizes inside a tf.function.
        assert "cannot be traced with unknown height and width" in str(error)
        assert "input_size=(height, width), multiples of its stride 16" in str(error)
        assert not (tmp_path / "deeplab").exists()
        version_dir = export.saved_model(model, tmp_path / "deeplab", input_size=(64, 96))
        meta = export.read_export_metadata(version_dir)
        assert meta["input_size"] == [64, 96] and meta["dynamic_size"] is False
    images = np.random.RandomState(6).normal(size=(1, 64, 96, 1)).astype(np.float32)
    out = tf.saved_model.load(version_dir).signatures["serving_default"](image=tf.constant(images))
    expected = softmax(np.asarray(model(images, training=False)))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("canvas, area", [((32, 32), 1024), (None, 256)])
def test_dynamic_export_pads_to_the_training_canvas(tmp_path, canvas, area):
    """A model whose output depends on the image mean (as instance normalization does)."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((None, None, 1))
    centred = inputs - keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
    model = keras.Model(inputs, keras.ops.concatenate(
        [keras.ops.zeros_like(centred), 4.0 * centred], axis=-1))
    version = export.saved_model(model, tmp_path / "m", version=1, stride=8, canvas=canvas,
                                 output_activation="logits", bytes_signature=False)
    served = tf.saved_model.load(version).signatures["serving_default"]
    out = served(image=tf.ones((1, 10, 12, 1)))
    assert out["probabilities"].shape == (1, 10, 12, 2)
    # 120 ones on a canvas of `area` pixels (the 16x16 stride padding without a canvas).
    expected = 1.0 / (1.0 + np.exp(-4.0 * (1.0 - 120.0 / area)))
    np.testing.assert_allclose(out["probabilities"].numpy()[..., 1], expected, rtol=1e-5)
