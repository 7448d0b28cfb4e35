"""Mixed precision: policy choice, fall-back message, float32 heads."""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.training import precision
from tests.small import TINY_OPTIONS, TINY_UNET


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_off_means_float32():
    assert precision.choose_policy(False) == ("float32", "mixed precision off: training in float32")


def test_automatic_choice_on_this_machine(monkeypatch):
    monkeypatch.setattr(precision.tf.config, "list_logical_devices", lambda kind: [])
    monkeypatch.setattr(precision, "_cpu_has_bfloat16", lambda: False)
    name, message = precision.choose_policy(True)
    assert name == "float32"
    assert "unsupported here" in message and "training in float32" in message


def test_gpu_gets_float16_and_bf16_cpu_gets_bfloat16(monkeypatch):
    monkeypatch.setattr(precision.tf.config, "list_logical_devices",
                        lambda kind: ["gpu"] if kind == "GPU" else [])
    assert precision.choose_policy(True)[0] == "mixed_float16"
    monkeypatch.setattr(precision.tf.config, "list_logical_devices", lambda kind: [])
    monkeypatch.setattr(precision, "_cpu_has_bfloat16", lambda: True)
    assert precision.choose_policy(True)[0] == "mixed_bfloat16"


def test_invalid_policy():
    with pytest.raises(ValueError, match="`mixed_precision` must be one of"):
        precision.choose_policy("float8")


@pytest.mark.parametrize("name", ["unet", "fcn8s"])
def test_model_under_mixed_bfloat16_keeps_float32_head(name):
    precision.set_policy("mixed_bfloat16")
    model = kerasseg.build(name, input_shape=(32, 32, 1), num_classes=3, **TINY_OPTIONS[name])
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"
    model.compile(optimizer="adam", loss=kerasseg.losses.DiceCELoss(from_logits=True))
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss)
    assert model.predict(x, verbose=0).dtype == np.float32


def test_train_restores_the_global_policy(sample, tmp_path):
    data = sample.subset([0, 1, 2])
    kerasseg.train(data, "unet", output_dir=tmp_path, epochs=1, steps_per_epoch=1, batch_size=2,
                   model_options=TINY_UNET, mixed_precision=True,
                   verbose=0, evaluate=False)
    assert keras.mixed_precision.global_policy().name == "float32"
    # The run used what this machine supports (bfloat16 on CPUs with bfloat16 units).
    from kerasseg.training.precision import choose_policy

    expected = choose_policy(True)[0]
    with open(tmp_path / "train.log") as handle:
        assert f"precision {expected}" in handle.read()
