"""Train a prostate MRI segmenter on the PROMISE12 challenge data.

PROMISE12 (Litjens et al., Medical Image Analysis 18(2), 2014) provides 50 training T2-weighted
prostate MRI volumes with expert masks and 30 test volumes, as MetaImage files. Register at
https://promise12.grand-challenge.org/ to download them, unpack the archives into one folder,
and pass it as --data-dir; any subfolders are searched::

    PROMISE12/
      TrainingData_Part1/Case00.mhd  Case00.raw  Case00_segmentation.mhd  Case00_segmentation.raw
      TrainingData_Part2/...
      TrainingData_Part3/...
      TestData/Case00.mhd  Case00.raw   (no masks)

Settings come from the plan of the data (``kerasseg plan --data PROMISE12`` prints it): for
PROMISE12's anisotropic volumes (about 0.6 x 0.6 x 3.6 mm) it trains 2.5-D on axial slices with
one neighbour on each side as channels, resamples to the median spacing (the slice thickness
at its 10th percentile), z-scores each volume, and chooses the U-Net's depth, the patch and
batch sizes, and the epochs that fit the time budget (``--budget``, one hour by default). The
PROMISE12 literature's hand-set recipe (0.625 mm in-plane, 2.5-D with two neighbours, z-score)
is close to it. Dice + cross-entropy; 20% of the cases (by case) are held out for validation
and model selection. Any option given replaces its planned value. The script evaluates the
best model per case in 3-D at the original geometry, predicts the test cases
(``CaseNN_segmentation.mhd``) when present, and exports the best model as a TF Serving
SavedModel and a TFLite file.

With ``--mode 3d`` it trains a 3-D U-Net (``unet3d``, unless ``--model`` names another 3-D
family) on volume patches and predicts by sliding window; evaluation, test predictions and the
exports are as in 2-D (the TFLite file takes one patch-sized window).

Usage:
    python examples/train_promise12.py --data-dir PROMISE12 [--budget 1h] [--output runs/promise12]
    python examples/train_promise12.py --data-dir PROMISE12 --mode 3d
"""

import argparse
import glob
import os
import sys

WHERE = __doc__.split("Settings come from")[0]


def parse_args(argv=None):
    from kerasseg.data.spec import MODES

    parser = argparse.ArgumentParser(description="Train a U-Net on PROMISE12 prostate MRI.")
    parser.add_argument("--data-dir", help="folder holding the PROMISE12 cases")
    parser.add_argument("--budget", default=None,
                        help="training time, e.g. 20m or 2h (planned: 1h unless --epochs)")
    parser.add_argument("--epochs", type=int, default=None, help="planned: fitted to --budget")
    parser.add_argument("--output", default="runs/promise12")
    parser.add_argument("--batch-size", type=int, default=None, help="planned")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="planned: 100")
    parser.add_argument("--model", default=None,
                        help="model family (default: unet; unet3d with --mode 3d)")
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE", default=None,
                        help="model option (planned: depth, base_filters, normalization)")
    parser.add_argument("--target-spacing", default=None,
                        help="x,y,z in mm; an empty entry keeps that axis (planned: the median)")
    parser.add_argument("--mode", default=None, choices=list(MODES), help="planned: 2.5d")
    parser.add_argument("--resume", action="store_true")
    return parser.parse_args(argv)


def _explain(problem):
    print(f"train_promise12: {problem}\n\n{WHERE.strip()}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    if not args.data_dir:
        return _explain("no --data-dir given.")
    if not os.path.isdir(args.data_dir):
        return _explain(f"--data-dir {args.data_dir} is not a folder.")
    if not glob.glob(os.path.join(args.data_dir, "**", "Case*.mhd"), recursive=True):
        return _explain(f"no CaseNN.mhd files under {args.data_dir}.")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import kerasseg
    from kerasseg import report
    from kerasseg.cli import _model_options, _spacing
    from kerasseg.data import load_dataset
    from kerasseg.deploy import export_trained
    from kerasseg.inference import Predictor, predict_path

    model = args.model
    if model is None:
        # Mode 3d trains a 3-D family on whole-volume patches; the 2-D default cannot.
        model = "unet3d" if args.mode == "3d" else "unet"
        if args.mode == "3d":
            print("train_promise12: --mode 3d without --model: training unet3d (3-D U-Net).")
    training = load_dataset(args.data_dir, format="promise12")
    print(training.describe())
    result = kerasseg.train(
        training, model, output_dir=args.output, epochs=args.epochs, budget=args.budget,
        batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch, mode=args.mode,
        target_spacing=_spacing(args.target_spacing),
        model_options=_model_options(args.model_option), loss="dice_ce", val_fraction=0.2,
        resume=args.resume, verbose=2,
    )

    evaluation = result.evaluation
    files = report.write_report(evaluation, os.path.join(args.output, "validation.json"),
                                extra={"model": result.best_model, "cases": "validation"})
    print(report.format_summary(evaluation))

    predictor = Predictor(result.best_model)
    test_cases = load_dataset(args.data_dir, format="promise12", subset="test") \
        if glob.glob(os.path.join(args.data_dir, "**", "TestData*"), recursive=True) else None
    if test_cases is not None and len(test_cases):
        folder = os.path.join(args.output, "test_predictions")
        for case in test_cases:
            predict_path(None, case.image_paths[0], folder, predictor=predictor)
        print(f"test predictions: {folder}")

    validation = training.subset([c["case_id"] for c in evaluation["cases"]])
    exported = export_trained(
        predictor, saved_model_dir=os.path.join(args.output, "export", "promise12"),
        tflite_path=os.path.join(args.output, "promise12.tflite"), data=validation,
        overwrite=True,
    )
    saved, tflite_path = exported["saved_model"], exported["tflite"]
    print(exported["parity"])
    print(f"\nbest model: {result.best_model}\nSavedModel: {saved}\nTFLite: {tflite_path}\n"
          f"validation report: {files['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
