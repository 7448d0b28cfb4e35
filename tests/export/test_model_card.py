"""The export model card: what a client must do, spelled out from the export metadata."""

import pytest

from kerasseg import export
from kerasseg.export.model_card import model_card
from tests.export.helpers import build_small

BASE = {
    "model_name": "hippo",
    "version": 2,
    "architecture": "unet",
    "created": "2026-01-01T00:00:00+00:00",
    "input_size": None,
    "stride": 8,
    "channels": 5,
    "num_classes": 3,
    "activation": "softmax",
    "normalization": {"method": "zscore", "params": {"nonzero": False}},
    "mask_pad_value": -1,
    "signatures": {"serving_default": {
        "inputs": {"image": {"dtype": "float32", "shape": [-1, -1, -1, 5]}},
        "outputs": {"mask": {"dtype": "int32", "shape": [-1, -1, -1]}}}},
}


def test_card_spells_out_multi_view_volume_steps():
    metadata = dict(BASE, class_names=["background", "Anterior", "Posterior"], volume={
        "mode": "2.5d", "context": 2, "slice_axis": [2, 0],
        "target_spacing": [None, 0.5, 0.5]})
    card = model_card(metadata, [2])
    lines = card.splitlines()
    assert "- Classes: background, Anterior, Posterior." in lines
    # No serving_bytes signature here: the card does not claim it normalizes.
    assert "- Normalization used in training: `" in card and "serving_bytes" not in card
    start = lines.index("## Volumes")
    steps = [line for line in lines[start:] if line[:3] in {f"{n}. " for n in range(1, 10)}]
    assert len(steps) == 5
    assert steps[0].startswith("1. Normalize the whole volume")
    assert '"zscore"' in steps[0]
    assert steps[1] == "2. Resample it linearly to the voxel spacing (x, y, z) = (keep, 0.5 mm, 0.5 mm)."
    assert "across array axis 2 (W), 0 (D)" in steps[2]
    assert "the 5 slices at offsets -2..+2" in steps[2]
    assert steps[3].startswith("4. Predict every axis") and "average" in steps[3]
    assert steps[4].startswith("5. Resample the probabilities linearly back")
    # The volume section comes before the serving instructions.
    assert start < lines.index("## Serve")


def test_card_lists_the_shift_averaging_step():
    volume = {"mode": "2.5d", "context": 2, "slice_axis": [0, 1, 2],
              "target_spacing": [0.5, 0.5, 0.5], "shift_offsets": [[0, 0], [0, 2], [2, 0], [2, 2]]}
    lines = model_card(dict(BASE, volume=volume), [1]).splitlines()
    steps = [line for line in lines[lines.index("## Volumes"):] if line[:3] in
             {f"{n}. " for n in range(1, 10)}]
    assert len(steps) == 6
    assert steps[3] == (
        "4. Predict each slice as it is and moved by (0, 2), (2, 0), (2, 2) pixels (rows, "
        "columns; zero-padded, then padded to the stride), move each prediction's "
        "probabilities back and average them.")
    assert steps[4].startswith("5. Predict every axis")
    # The export metadata keeps the offsets of the volume spec it is given.
    from kerasseg.export.saved_model import _check_volume

    assert _check_volume(volume, 5)["shift_offsets"] == volume["shift_offsets"]
    assert "shift_offsets" not in _check_volume(dict(volume, shift_offsets=None), 5)


def test_card_single_axis_2d_volume_has_no_resampling_or_averaging():
    metadata = dict(BASE, channels=1, volume={
        "mode": "2d", "context": 0, "slice_axis": [0], "target_spacing": None})
    card = model_card(metadata, [1])
    section = card[card.index("## Volumes"):card.index("## Serve")]
    assert "1. Normalize" in section
    assert "2. Cut slices across array axis 0 (D), one slice per input." in section
    assert "3. Take the argmax over classes." in section
    assert "Resample" not in section and "average" not in section


def test_card_warns_that_serving_bytes_normalizes_per_image_for_volume_models():
    metadata = dict(BASE, channels=1, volume={
        "mode": "2d", "context": 0, "slice_axis": [0], "target_spacing": None})
    metadata["signatures"] = dict(BASE["signatures"], serving_bytes={
        "inputs": {"image_bytes": {"dtype": "string", "shape": [-1]}},
        "outputs": {"mask": {"dtype": "int32", "shape": [-1, -1, -1]}}})
    card = model_card(metadata, [1])
    assert "normalizes each image file with its own statistics, not the volume's" in card
    assert "normalizes each image file" not in model_card(dict(metadata, volume=None), [1])
    # Constants (a CT window) do not depend on the image: no warning.
    windowed = dict(metadata, normalization={"method": "ct_window",
                                             "params": {"center": 40, "width": 400}})
    assert "normalizes each image file" not in model_card(windowed, [1])


def test_card_without_volume_has_no_volume_section():
    card = model_card(dict(BASE), [1])
    assert "## Volumes" not in card and "- Classes:" not in card


@pytest.mark.parametrize("volume, match", [
    ({"context": 1}, "at least 'context' and 'slice_axis'"),
    ({"context": 1, "slice_axis": [0, 0]}, "distinct axes in 0..2"),
    ({"context": 1, "slice_axis": 3}, "distinct axes in 0..2"),
    ({"context": 2, "slice_axis": 0}, "multiple of 2 \\* context \\+ 1"),
    ("2.5d", "training preprocessing spec"),
])
def test_bad_volume_is_refused_before_anything_is_written(tmp_path, volume, match):
    model = build_small("unet")
    with pytest.raises(ValueError, match=match):
        export.saved_model(model, tmp_path / "m", volume=volume)
    assert not (tmp_path / "m").exists()


def test_class_names_must_match_the_outputs(tmp_path):
    model = build_small("unet")
    with pytest.raises(ValueError, match="class_names"):
        export.saved_model(model, tmp_path / "m", class_names=["a", "b"])
