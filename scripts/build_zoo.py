"""Train, evaluate and package the model zoo's entries.

Every entry is trained by ``kerasseg train`` with the arguments in ``scripts/zoo_recipes.py``,
evaluated per case in 3-D on the run's held-out test cases (never used for training or model
selection), with and without flip test-time augmentation, and packaged into the package's
``kerasseg/zoo/weights/`` folder (so the wheel carries it): the ``.keras`` file, its model
card, its per-case metrics and a golden output; the registry entry
(``kerasseg/zoo/registry.json``) gets the file's size, SHA-256, parameter count, split and
metrics, and the README's zoo table is rewritten from the registry. The kerasseg imported is
this checkout's, so the files and the registry it writes are both this checkout's.

Usage (from the repository root):
    python scripts/build_zoo.py train NAME [--data-root ../shared/data] [--runs runs/zoo]
    python scripts/build_zoo.py package NAME [--data-root ...] [--runs ...]
    python scripts/build_zoo.py readme

A name in ``zoo_recipes.ENSEMBLES`` is an ensemble of other entries: ``package`` chooses
and scores it (``scripts/zoo_ensemble.py``); it has nothing to train.
"""

import argparse
import datetime
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from zoo_recipes import ENSEMBLES, RECIPES, run_folders, train_commands  # noqa: E402
from zoo_tables import (  # noqa: E402
    ZOO, per_case_metrics, readme, register, summary_metrics)

# Parity required of float16 weight storage, on the held-out cases.
FLOAT16_MAX_CASE_DICE_CHANGE = 0.01
FLOAT16_MAX_MEAN_DICE_CHANGE = 0.002


def train(name, data_root, runs):
    """Run the entry's ``kerasseg train`` commands, one per stage."""
    for arguments in train_commands(name, data_root, runs):
        command = [sys.executable, "-m", "kerasseg"] + arguments
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)


def _golden(model_path, case, target):
    """Store the entry's prediction on one held-out case: labels and central-slice scores."""
    import numpy as np

    from kerasseg.inference import Predictor

    label, scores = Predictor(str(model_path)).predict_case(case, return_probabilities=True)
    middle = label.shape[0] // 2
    crop = scores[middle, :64, :64]
    np.savez_compressed(target, case_id=case.case_id, labels=label.astype("uint8"),
                        slice_index=middle, slice_scores=crop.astype("float32"))


def package(name, data_root, runs):
    """Evaluate the run of entry ``name`` and write its zoo files and registry entry."""
    import keras

    from kerasseg import zoo
    from kerasseg.data import load_dataset
    from kerasseg.inference import shift_grid, supports_tta
    from kerasseg.scoring import evaluate_model
    from kerasseg.modelfile import compact_model, load_model
    from kerasseg.description import RunSpec
    from kerasseg.files import write_json_atomic, write_text_atomic

    recipe = RECIPES[name]
    run_dir = pathlib.Path(runs) / name
    run = RunSpec.read(run_dir / "run.json")
    if run is None:
        raise SystemExit(f"{run_dir}/run.json not found: train the entry first")
    info = run.info
    class_names = list(info.class_names)
    options = {"class_names": class_names}
    if info.label_values:
        options["label_values"] = list(info.label_values)
    dataset = load_dataset(os.path.join(data_root, recipe["data"]), **options)
    held_out = dataset.subset(run.split["test"])
    ZOO.mkdir(exist_ok=True)
    target = ZOO / f"{name}.keras"

    # The prediction's shift averaging (if the recipe asks for it) travels in the file's info.
    shifts = shift_grid(recipe.get("shift_step", 0))
    updates = {"shift_offsets": [list(shift) for shift in shifts]} if len(shifts) > 1 else None
    # The reference is the float32 copy (a run trained under mixed precision computes in
    # float32 once compacted), then the stored-weights copy is compared with it.
    compact_model(run_dir / "best.keras", target, weights_dtype="float32", info_updates=updates)
    reference = evaluate_model(str(target), held_out)
    compact_model(run_dir / "best.keras", target, weights_dtype=recipe["weights_dtype"],
                  info_updates=updates)
    plain = evaluate_model(str(target), held_out)
    # Flip TTA only for models trained with flips (the Predictor refuses it otherwise).
    tta = evaluate_model(str(target), held_out, tta=True) if supports_tta(info) else None
    changes = [abs(a["mean_foreground_dice"] - b["mean_foreground_dice"])
               for a, b in zip(reference["cases"], plain["cases"])]
    parity = {
        "weights_storage": recipe["weights_dtype"],
        "mean_dice_float32_weights": round(reference["mean_foreground_dice"], 5),
        "mean_dice_stored_weights": round(plain["mean_foreground_dice"], 5),
        "max_case_dice_change": round(max(changes), 5),
    }
    if recipe["weights_dtype"] == "float16" and (
            max(changes) > FLOAT16_MAX_CASE_DICE_CHANGE
            or abs(reference["mean_foreground_dice"] - plain["mean_foreground_dice"])
            > FLOAT16_MAX_MEAN_DICE_CHANGE):
        print(f"{name}: float16 weights change the results too much ({parity}); storing float32")
        compact_model(run_dir / "best.keras", target, weights_dtype="float32",
                      info_updates=updates)
        plain = reference
        parity["weights_storage"] = "float32"

    model, _ = load_model(target)
    epochs_run, best_epoch = _epochs(run_folders(name, runs))
    commands = train_commands(name)
    record = {
        "name": name,
        "arch": recipe["arch"],
        "summary": recipe["summary"],
        "limits": recipe["limits"],
        "file": target.name,
        "size": target.stat().st_size,
        "sha256": zoo.sha256(target),
        "url": None,
        "card": f"{name}.md",
        "params": int(model.count_params()),
        "build": {"arch": recipe["arch"], "input_channels": int(model.input_shape[-1]),
                  "num_classes": len(class_names), "options": info.model_options},
        "input": {"channels": info.channels, "modalities": list(info.modalities),
                  "patch_size": list(info.patch_size), "stride": info.stride,
                  "preprocessing": info.preprocessing.to_dict(),
                  "label_values": list(info.label_values) if info.label_values else None,
                  "spatial_dims": info.spatial_dims,
                  "shift_offsets": updates["shift_offsets"] if updates else None},
        "class_names": class_names,
        "training": {
            "command": "\n".join("kerasseg " + " ".join(c) for c in commands),
            "seed": run.settings.seed,
            "data": recipe["dataset"],
            "data_folder": recipe["data"],
            "licence": recipe["licence"],
            "citation": recipe["citation"],
            "epochs": epochs_run,
            "best_epoch": best_epoch,
            "stages": len(commands),
            "software": f"kerasseg, TensorFlow {_tf_version()}, Keras {keras.__version__}",
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
            "date": datetime.date.today().isoformat(),
        },
        "split": {"train": run.split["train"], "val": run.split["val"],
                  "test": run.split["test"]},
        "metrics": summary_metrics(plain, class_names),
        "metrics_tta": summary_metrics(tta, class_names) if tta else None,
        "storage_parity": parity,
    }
    cases = {"no_tta": per_case_metrics(plain, class_names)}
    if tta:
        cases["tta"] = per_case_metrics(tta, class_names)
    write_json_atomic(ZOO / f"{name}.metrics.json", cases)
    _golden(target, held_out[0], ZOO / f"{name}.golden.npz")
    write_text_atomic(ZOO / record["card"], card(record, cases))

    register(record)
    print(f"{name}: {record['metrics']} (TTA {record['metrics_tta']}), {record['size'] / 1e6:.2f} MB")


def _epochs(folders):
    """Return the epochs run over all stages and the best epoch, counted across stages
    (epochs without validation, as with ``--val-every``, are not candidates)."""
    from kerasseg.reporting import best_epoch, read_history

    done, best = 0, None
    for folder in folders:
        table = read_history(pathlib.Path(folder) / "history.csv")
        stage_best, _ = best_epoch(table)
        best = None if stage_best is None else done + stage_best
        done += len(table["epoch"])
    return done, best


def _tf_version():
    import tensorflow as tf

    return tf.__version__


def _stages(training):
    if training.get("stages", 1) == 1:
        return ""
    return (f" in {training['stages']} stages (each later stage restarts the learning-rate "
            "schedule from the previous stage's best model)")


def card(record, cases):
    """Return the Markdown model card of a registry record and its per-case metrics."""
    names = record["class_names"]
    training = record["training"]
    volumes = record["input"]["spatial_dims"] == 3
    unit = "mm" if volumes else "pixels"
    lines = [
        f"# {record['name']}",
        "",
        record["summary"],
        "",
        "## Use",
        "",
        "```bash",
        f"kerasseg predict --model {record['name']} --input IMAGES/ --output PREDICTIONS/",
        "```",
        "",
        "```python",
        "from kerasseg import zoo",
        f"model, info = zoo.load({record['name']!r}, return_info=True)",
        "```",
        "",
        "Raw files need no options: the entry's file carries its preprocessing "
        f"({_describe_preprocessing(record)}). "
        "Predictions come back on each input's own grid."
        + _describe_shifts(record["input"].get("shift_offsets")),
        "",
        "## Model",
        "",
        f"- architecture: `{record['arch']}` with options `{record['build']['options']}`, "
        f"{record['params']:,} parameters",
        f"- input: {record['input']['channels']} channel(s) "
        f"({', '.join(record['input']['modalities'] or [])}); trained on "
        f"{'x'.join(str(n) for n in record['input']['patch_size'])} inputs; "
        + ("volumes of any size are predicted by sliding window"
           if len(record["input"]["patch_size"]) == 3 else
           f"any size that is a multiple of {record['input']['stride']} works, larger images "
           "are tiled"),
        f"- classes: {', '.join(f'{i} {n}' for i, n in enumerate(names))}",
        f"- file: `{record['file']}`, {record['size'] / 1e6:.2f} MB, SHA-256 `{record['sha256']}`; "
        f"weights stored as {record['storage_parity']['weights_storage']}",
        "",
        "## Training",
        "",
        f"- data: {training['data']}",
        f"- licence: {training['licence']}",
        f"- cite: {training['citation']}",
        f"- split (by case, seed {training['seed']}): {len(record['split']['train'])} training, "
        f"{len(record['split']['val'])} model-selection, {len(record['split']['test'])} held-out "
        "cases (listed in the registry)",
        f"- {training['epochs']} epochs{_stages(training)}, best model-selection Dice at epoch "
        f"{training['best_epoch']}; {training['software']}; {training['machine']}; "
        f"{training['date']}",
        "- command{} (from the repository root, data beside it):".format(
            "s, one per stage" if training.get("stages", 1) > 1 else ""),
        "",
        "```bash",
        training["command"],
        "```",
        "",
        "## Measured accuracy",
        "",
        f"On the {len(record['split']['test'])} held-out cases, never used for training or model "
        f"selection, {'per case in 3-D at the original 1 mm grid' if volumes else 'per image'}; "
        f"HD95 in {unit}:",
        "",
        "| prediction | mean foreground Dice | " + " | ".join(
            f"{n} Dice | {n} HD95" for n in names[1:]) + " |",
        "| --- | ---: | " + " | ".join("---: | ---:" for _ in names[1:]) + " |",
    ]
    for label, metrics in (("plain", record["metrics"]), ("flip TTA", record["metrics_tta"])):
        if metrics is None:
            continue
        lines.append(f"| {label} | {metrics['mean_dice']:.3f} | " + " | ".join(
            f"{metrics[f'dice_{n}']:.3f} | {metrics[f'hd95_{n}']:.2f}" for n in names[1:]) + " |")
    if record["metrics_tta"] is None:
        mirrored = "volume" if len(record["input"]["patch_size"]) == 3 else "slice"
        lines += ["", "No flip TTA: the model was trained without flips because its classes "
                      f"depend on the side (a mirrored {mirrored} would swap them), and "
                      "`kerasseg predict --tta` refuses it."]
    parity = record["storage_parity"]
    lines += [
        "",
        f"Weight storage: with float32 weights the held-out mean Dice is "
        f"{parity['mean_dice_float32_weights']:.4f}; with the stored "
        f"{parity['weights_storage']} weights {parity['mean_dice_stored_weights']:.4f} (largest "
        f"change of one case's Dice: {parity['max_case_dice_change']:.4f}).",
        "",
        "Per case (plain prediction; `kerasseg predict` without `--tta` reproduces these"
        + (f"; `{record['name']}.metrics.json` also holds the TTA numbers):"
           if record["metrics_tta"] else "):"),
        "",
        "| case | " + " | ".join(f"{n} Dice | {n} HD95" for n in names[1:]) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in names[1:]) + " |",
    ]
    for case_id, values in sorted(cases["no_tta"].items()):
        lines.append(f"| {case_id} | " + " | ".join(
            f"{values[n]['dice']:.4f} | {values[n]['hd95']:.2f}" for n in names[1:]) + " |")
    lines += ["", "## Limits", "", record["limits"], ""]
    return "\n".join(lines)


def _describe_preprocessing(record):
    spec = record["input"]["preprocessing"]
    if spec.get("mode") == "3d":
        patch = "x".join(str(n) for n in record["input"]["patch_size"])
        parts = [f"3-D windows of {patch} voxels slid over the whole volume (overlap 0.5, "
                 "Gaussian weights)"]
    else:
        parts = [f"{spec['mode']} slices"]
    if spec.get("mode") == "2.5d":
        parts[0] += f" with {spec['context']} neighbours on each side"
    if record["input"]["spatial_dims"] == 3 and spec.get("mode") != "3d":
        axes = spec["slice_axis"]
        parts.append(f"taken across volume axis {axes}" if isinstance(axes, int) else
                     f"taken across each of the volume axes {axes} (multi-view: the prediction "
                     "averages the views' probabilities)")
    if spec.get("target_spacing"):
        parts.append(f"resampled to spacing {spec['target_spacing']} (x, y, z)")
    parts.append(f"{spec['normalization']['method']} intensity normalization")
    return ", ".join(parts)


def _describe_shifts(offsets):
    if not offsets:
        return ""
    moved = ", ".join(f"({row}, {column})" for row, column in offsets if row or column)
    return (f" Each slice is also predicted moved by {moved} pixels (rows, columns) on a "
            "zero-padded canvas and the probabilities, moved back, are averaged: this model "
            "predicts at a fraction of its input resolution, and the shifts refine where its "
            "boundaries fall. The measured accuracy includes it; `--shift-step 0` predicts "
            f"once ({len(offsets)} times faster).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["train", "package", "readme"])
    parser.add_argument("names", nargs="*", help=f"entries (default: all of {sorted(RECIPES)}; "
                                                 f"package also {sorted(ENSEMBLES)})")
    parser.add_argument("--data-root", default=os.environ.get("KERASSEG_DATA", "../shared/data"))
    parser.add_argument("--runs", default="runs/zoo")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.step == "readme":
        return readme()
    # The ensembles after the entries they are chosen from.
    for name in args.names or sorted(RECIPES) + (sorted(ENSEMBLES) if args.step == "package"
                                                 else []):
        if name in ENSEMBLES and args.step == "package":
            from zoo_ensemble import package_ensemble

            package_ensemble(name, args.data_root)
            continue
        if name not in RECIPES:
            raise SystemExit(f"unknown entry {name!r}; the recipes are {sorted(RECIPES)}"
                             f" and the ensembles {sorted(ENSEMBLES)} (package only)")
        (train if args.step == "train" else package)(name, args.data_root, args.runs)


if __name__ == "__main__":
    main()
