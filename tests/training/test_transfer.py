"""Starting from trained weights: layer copy by name and shape, frozen encoder first."""

import numpy as np
import pytest

import kerasseg
from kerasseg.modelfile import load_model, read_info
from kerasseg.training.transfer import load_init_weights, set_encoder_trainable
from tests.small import TINY_OPTIONS, TINY_UNET

FAST = dict(steps_per_epoch=2, batch_size=4, model_options=TINY_UNET, verbose=0,
            evaluate=False, augment="none")


@pytest.fixture(scope="module")
def source(tiny, tmp_path_factory):
    output = tmp_path_factory.mktemp("source")
    return kerasseg.train(tiny, "unet", output_dir=output, epochs=1, **FAST).best_model


def _encoder(model):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers
            if layer.name.startswith(("enc", "bottleneck")) and layer.get_weights()}


def test_copy_by_name_and_new_head_for_other_class_count(source):
    info = read_info(source)
    target = kerasseg.build("unet", input_shape=(None, None, info.channels), num_classes=5,
                            **info.model_options)
    report = load_init_weights(target, source)
    assert "head_logits" in report["skipped"]  # 3 classes -> 5 classes: a new head at zero
    assert all(not w.any() for w in target.get_layer("head_logits").get_weights())
    assert "enc0_1_conv" in report["copied"] and "dec0_2_conv" in report["copied"]
    trained = load_model(source)[0]
    np.testing.assert_array_equal(target.get_layer("enc0_1_conv").get_weights()[0],
                                  trained.get_layer("enc0_1_conv").get_weights()[0])


def test_unrelated_architecture_is_refused(source):
    other = kerasseg.build("fcn8s", input_shape=(None, None, 1), num_classes=3,
                           **TINY_OPTIONS["fcn8s"])
    with pytest.raises(ValueError, match="shares no layer"):
        load_init_weights(other, source)


def test_set_encoder_trainable_leaves_decoder_and_head():
    model = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2, **TINY_UNET)
    set_encoder_trainable(model, False)
    assert not model.get_layer("enc0_1_conv").trainable
    assert model.get_layer("dec0_1_conv").trainable and model.get_layer("head_logits").trainable


def test_frozen_encoder_epochs_then_unfrozen(tiny, source, tmp_path):
    start = _encoder(load_model(source)[0])
    frozen = kerasseg.train(tiny, "unet", output_dir=tmp_path / "a", epochs=1,
                            init_weights=source, freeze_encoder_epochs=1, **FAST)
    after_frozen = _encoder(load_model(tmp_path / "a" / "last.keras")[0])
    for name, weights in start.items():
        # Convolutions stay; batch-norm moving statistics may still update.
        if name.endswith("_conv"):
            for a, b in zip(weights, after_frozen[name]):
                np.testing.assert_array_equal(a, b)
    assert frozen.epochs_run == 1
    kerasseg.train(tiny, "unet", output_dir=tmp_path / "b", epochs=2,
                   init_weights=source, freeze_encoder_epochs=1, **FAST)
    unfrozen, info = load_model(tmp_path / "b" / "last.keras", compile=True)
    moved = [not np.array_equal(start[name][0], unfrozen.get_layer(name).get_weights()[0])
             for name in start if name.endswith("_conv")]
    assert all(moved)
    # The optimizer of the second phase continued the schedule's step count.
    assert int(unfrozen.optimizer.iterations.numpy()) == 2 * FAST["steps_per_epoch"]
    assert "encoder unfrozen after epoch 1" in (tmp_path / "b" / "train.log").read_text()


def _first_epoch_reaching(history, threshold):
    epochs = [row["epoch"] if "epoch" in row else i + 1 for i, row in enumerate(history)
              if row["val_dice"] >= threshold]
    return epochs[0] if epochs else len(history) + 1


def test_zoo_start_reaches_the_dice_in_fewer_epochs_than_scratch(tmp_path):
    """A new task (whole hippocampus, one class) on 10 volumes, from the zoo U-Net or scratch."""
    from kerasseg import zoo
    from kerasseg.data import load_dataset
    from kerasseg.sample import hippocampus_path

    if "hippocampus-unet" not in zoo.list_entries():
        pytest.fail("the zoo entry hippocampus-unet is missing")
    data = load_dataset(hippocampus_path(), class_names=["background", "hippocampus"],
                        label_values={0: 0, 1: 1, 2: 1})
    subset = data.subset(data.case_ids[:10])
    recipe = zoo.entry("hippocampus-unet")
    common = dict(epochs=4, steps_per_epoch=3, batch_size=16, mode="2.5d", context=2,
                  slice_axis=2, model_options=recipe["build"]["options"],
                  val_cases=subset.case_ids[-3:], learning_rate=1e-3, augment="none", val_every=1,
                  evaluate=False, verbose=0, seed=0)
    scratch = kerasseg.train(subset, "unet", output_dir=tmp_path / "scratch", **common)
    transfer = kerasseg.train(subset, "unet", output_dir=tmp_path / "zoo",
                              init_weights="hippocampus-unet", **common)
    threshold = 0.8
    from_zoo = _first_epoch_reaching(transfer.history, threshold)
    from_scratch = _first_epoch_reaching(scratch.history, threshold)
    assert from_zoo <= 2, transfer.history
    # The zoo model's normalization layers are kept, not replaced by the planned ones.
    assert read_info(transfer.best_model).model_options["normalization"] == \
        read_info(zoo.fetch("hippocampus-unet")).model_options.get("normalization", "batch")
    assert from_zoo < from_scratch, (transfer.history, scratch.history)
