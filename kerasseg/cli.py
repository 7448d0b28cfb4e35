"""The ``kerasseg`` command: plan, train, evaluate, choose-ensemble, predict, export and zoo.

Examples::

    kerasseg plan --data data/msd_hippocampus
    kerasseg train --data data/msd_hippocampus --output runs/hippo --budget 20m
    kerasseg train --data data/msd_hippocampus --model unet --epochs 30 --output runs/hippo
    kerasseg train --output runs/hippo --resume
    kerasseg evaluate --model runs/hippo/best.keras --data data/msd_hippocampus --report runs/hippo/report.json
    kerasseg predict --model runs/hippo/best.keras --input imagesTs --output predictions --tta
    kerasseg predict --model hippocampus-unet --model hippocampus-fcn8s --input imagesTs --output ens
    kerasseg evaluate --model runs/a/best.keras --model runs/b/best.keras --weights 0.6,0.4 \
        --data data/msd_hippocampus --report runs/ensemble.json
    kerasseg choose-ensemble --model runs/a/best.keras --model runs/b/best.keras \
        --data data/msd_hippocampus
    kerasseg export --model runs/hippo/best.keras --saved-model exported/hippo --version 1
    kerasseg export --model runs/hippo/best.keras --tflite hippo_int8.tflite --quantize int8 --data data/msd_hippocampus
    kerasseg zoo list
"""

import argparse
import json
import os
import shlex
import sys


def _parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _model_options(pairs, flag="--model-option"):
    options = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"kerasseg: {flag} must be KEY=VALUE. Received: {pair!r}")
        key, value = pair.split("=", 1)
        options[key.strip()] = _parse_value(value)
    return options


def _augment(args):
    options = _model_options(args.augment_option, "--augment-option")
    return {"preset": args.augment or "default", **options} if options else args.augment


def _patch_size(text):
    if text == "auto":
        return "auto"
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--patch-size must be 'auto', N, HxW or DxHxW. Received: {text!r}") from None
    if len(values) not in (1, 2, 3) or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"--patch-size must be 'auto', N, HxW or DxHxW (positive). Received: {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _spacing(text):
    if text is None:
        return None
    if text.strip().lower() == "keep":
        return "keep"
    values = [None if p.strip().lower() in ("", "none", "-") else float(p) for p in text.split(",")]
    return tuple(values)


def _slice_axes(text):
    from kerasseg.data.spec import slice_axes

    try:
        axes = slice_axes({"slice_axis": [int(p) for p in text.split(",")]})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--slice-axis must be 0, 1 or 2, or distinct ones separated by commas "
            f"(multi-view). Received: {text!r}") from None
    return axes[0] if len(axes) == 1 else axes


def _shift_step(text):
    """The offsets of ``--shift-step N`` (:func:`kerasseg.inference.shift_grid` checks N)."""
    from kerasseg.inference import shift_grid

    try:
        return shift_grid(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--shift-step must be a whole number of pixels, 0 or more. Received: {text!r}"
        ) from None


SHIFT_HELP = ("average the predictions of each slice shifted by 0 and N pixels along rows "
              "and columns (4 passes; refines models that predict at a fraction of the input "
              "resolution). Default: the model's own setting (the zoo's DeepLabv3+ entry "
              "carries one); 0 predicts once")


PLANNED = "planned from the data when not given"


def _duration(text):
    from kerasseg.plan import parse_duration

    try:
        return parse_duration(text, "--budget")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("`", "")) from None


def _model_help():
    """The --model help of train and plan: the 2-D and the 3-D families."""
    from kerasseg.models import list_models

    return (f"model family: a 2-D one ({', '.join(list_models(spatial_dims=2))}; default "
            f"unet) trains on slices, a 3-D one ({', '.join(list_models(spatial_dims=3))}) "
            "on 3-D patches (--mode 3d)")


def _add_planned_options(p):
    """The options the plan fills (see `kerasseg plan`); shared by train and plan."""
    from kerasseg.data.augment import AUGMENT_PRESETS
    from kerasseg.data.spec import MODES
    from kerasseg.data.normalization import NAMED_NORMALIZATIONS
    from kerasseg.training.recipe import SCHEDULES

    p.add_argument("--epochs", type=int, default=None, help=f"{PLANNED}: fitted to --budget")
    p.add_argument("--budget", type=_duration, default=None, metavar="TIME",
                   help="wall-clock time for the whole run, e.g. 20m, 1.5h or 900 (seconds): "
                        "the step time is measured here and the epochs set to fit, "
                        "validation included; a run that falls behind (a busier machine) "
                        "stops when it is spent (default: 1h when --epochs is not given)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"per-replica batch size ({PLANNED})")
    p.add_argument("--steps-per-epoch", type=int, default=None, help=f"{PLANNED}: 100")
    p.add_argument("--patch-size", type=_patch_size, default=None,
                   help=f"auto, N, HxW, or DxHxW for a 3-D family ({PLANNED})")
    p.add_argument("--mode", choices=list(MODES), default=None,
                   help=f"{PLANNED}: 2d for images, 2.5d for volumes with a 2-D family, "
                        "3d (3-D patches) with a 3-D family")
    p.add_argument("--context", type=int, default=None,
                   help=f"2.5-D neighbours on each side ({PLANNED})")
    p.add_argument("--slice-axis", type=_slice_axes, default=None, metavar="AXIS[,AXIS...]",
                   help="volume axis that 2-D slices are taken across (0, 1 or 2), or several "
                        "for a multi-view model, e.g. 0,1,2: prediction averages the views "
                        f"({PLANNED})")
    p.add_argument("--normalization", default=None, choices=list(NAMED_NORMALIZATIONS),
                   help=f"intensity normalization ({PLANNED}: a CT window for CT, zscore "
                        "otherwise); the methods with required parameters (scale, fixed, "
                        "ct_window) are given as a dict to kerasseg.train")
    p.add_argument("--target-spacing", type=_spacing, default=None,
                   help="x,y[,z] in mm; leave an entry empty to keep that axis; 'keep' keeps "
                        f"the data's spacing ({PLANNED}: the median)")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="family option, e.g. depth=3 (repeatable; planned: depth, "
                        "base_filters, normalization=instance where the family has them)")
    p.add_argument("--learning-rate", type=float, default=None, help=f"{PLANNED}: 1e-3")
    p.add_argument("--schedule", default=None, choices=list(SCHEDULES),
                   help=f"{PLANNED}: cosine")
    p.add_argument("--warmup-epochs", type=int, default=None, help=f"{PLANNED}: 1")
    p.add_argument("--val-every", type=int, default=None, metavar="N",
                   help="validate after every N-th epoch and the last (planned: validation "
                        "at most a quarter of the time)")
    p.add_argument("--val-fraction", type=float, default=None, help=f"{PLANNED}: 0.2")
    p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{PLANNED}: on where the CPU has bfloat16 or a GPU is present")
    p.add_argument("--augment", default=None, choices=list(AUGMENT_PRESETS),
                   help=f"augmentation preset ({PLANNED}: default, without flips when several "
                        "foreground classes may depend on the side)")
    p.add_argument("--augment-option", action="append", metavar="KEY=VALUE",
                   help="override a preset parameter, e.g. flip_axes=[1] (flip only across "
                        "columns) or flip_prob=0 (repeatable; values are JSON)")


def _planned_args(args):
    """The planned options given on the command line, as `kerasseg.train` keywords."""
    return dict(
        epochs=args.epochs, budget=args.budget, batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch, patch_size=args.patch_size, mode=args.mode,
        context=args.context, slice_axis=args.slice_axis, normalization=args.normalization,
        target_spacing=args.target_spacing, model_options=_model_options(args.model_option),
        learning_rate=args.learning_rate, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs, val_every=args.val_every,
        val_fraction=args.val_fraction, mixed_precision=args.mixed_precision,
        augment=_augment(args))


def _add_labels(p):
    p.add_argument("--class-names", default=None, metavar="NAME,NAME,...",
                   help="names of the classes, index = class (default: from the data set)")
    p.add_argument("--label-values", default=None, metavar="V,V,...",
                   help="stored mask value of each class, index = class (e.g. 255,0 makes "
                        "0-valued pixels class 1)")


def _add_train(sub):
    from kerasseg.data.augment import AUGMENT_BACKENDS
    from kerasseg.training.recipe import LOSSES
    from kerasseg.training.strategy import STRATEGIES
    from kerasseg.training.trainer import VERBOSITY

    p = sub.add_parser(
        "train", help="train a model on a data set",
        description="Train a model. Every option marked 'planned' is drawn from the data "
                    "when left out (see `kerasseg plan`); giving it replaces its row.")
    p.add_argument("--data", help="data set folder (2-D folders, Decathlon, PROMISE12)")
    p.add_argument("--model", default="unet", help=_model_help())
    _add_labels(p)
    p.add_argument("--output", required=True, help="run folder")
    _add_planned_options(p)
    p.add_argument("--loss", default="dice_ce", choices=list(LOSSES))
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--no-plan", action="store_true",
                   help="fill unset options with fixed defaults instead of planning them "
                        "from the data")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop after PATIENCE validations without a better validation Dice")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="cases held out from training and model selection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", default="auto", choices=list(STRATEGIES))
    p.add_argument("--augment-backend", default="tf", choices=list(AUGMENT_BACKENDS),
                   help="tf: in-graph TF ops (fast); albumentations: NumPy, one example at a "
                        "time; the same transforms, elastic deformation included")
    p.add_argument("--foreground-prob", type=float, default=0.33)
    p.add_argument("--init-weights", default=None, help="zoo entry or model file to start from")
    p.add_argument("--freeze-encoder-epochs", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    p.add_argument("--overwrite", action="store_true", help="start afresh in --output")
    p.add_argument("--no-evaluate", action="store_true", help="skip the final per-case evaluation")
    p.add_argument("--verbose", type=int, default=1, choices=list(VERBOSITY),
                   help="training progress: 0 none, 1 progress bar and the run's log "
                        "(default), 2 one line per epoch; `kerasseg -v train` sets how much "
                        "TensorFlow and Python logging shows")
    p.set_defaults(func=_train)


def _labelled_dataset(path, class_names, label_values):
    from kerasseg.data import load_dataset

    options = {}
    if class_names:
        options["class_names"] = [name.strip() for name in class_names.split(",")]
        if not all(options["class_names"]):
            raise SystemExit(f"kerasseg train: --class-names has an empty name: {class_names!r}")
    if label_values:
        try:
            options["label_values"] = [int(value) for value in label_values.split(",")]
        except ValueError:
            raise SystemExit(
                f"kerasseg train: --label-values must be comma-separated integers: {label_values!r}"
            ) from None
    return load_dataset(path, **options)


def _train(args):
    from kerasseg.training import train

    if args.data is None and not args.resume:
        raise SystemExit("kerasseg train: --data is required (except with --resume)")
    data = args.data
    if args.resume:
        from kerasseg.description import RunSpec

        stored = RunSpec.read(os.path.join(args.output, "run.json"))
        if stored is None and data is None:
            raise SystemExit(f"kerasseg train: nothing to resume in {args.output}")
        if stored is not None:
            data = data or stored.data.get("root")
            # The run's own class names and mask values, unless given again.
            info = stored.info
            if args.class_names is None and info.class_names:
                args.class_names = ",".join(info.class_names)
            if args.label_values is None and info.label_values:
                args.label_values = ",".join(str(v) for v in info.label_values)
    if args.class_names or args.label_values:
        data = _labelled_dataset(data, args.class_names, args.label_values)
    result = train(
        data, args.model, output_dir=args.output, **_planned_args(args), loss=args.loss,
        weight_decay=args.weight_decay, plan=not args.no_plan,
        early_stopping=args.early_stopping, test_fraction=args.test_fraction, seed=args.seed,
        strategy=args.strategy, augment_backend=args.augment_backend,
        foreground_prob=args.foreground_prob, init_weights=args.init_weights,
        freeze_encoder_epochs=args.freeze_encoder_epochs, resume=args.resume,
        overwrite=args.overwrite, evaluate=not args.no_evaluate, verbose=args.verbose,
    )
    print(f"best model: {result.best_model}")
    return 0


def _add_plan(sub):
    p = sub.add_parser("plan", help="print the training plan drawn from a data set",
                       description="Fingerprint a data set (shapes, spacing, intensities, "
                                   "classes, object sizes) and print the settings `kerasseg "
                                   "train` would plan for every option left out.")
    p.add_argument("--data", required=True, help="data set folder (2-D folders, Decathlon, "
                                                 "PROMISE12)")
    p.add_argument("--model", default="unet", help=_model_help())
    _add_labels(p)
    p.add_argument("--output", default=None, metavar="PLAN.json",
                   help="also write the plan and the fingerprint as JSON")
    _add_planned_options(p)
    p.set_defaults(func=_plan)


def _plan(args):
    from kerasseg.plan import fingerprint, plan_training, trainable_model
    from kerasseg.files import write_json_atomic

    if args.epochs is not None and args.budget is not None:
        raise SystemExit("kerasseg plan: give either --epochs or --budget, not both")
    trainable_model(args.model)  # before the data is read
    dataset = _labelled_dataset(args.data, args.class_names, args.label_values)
    plan = plan_training(fingerprint(dataset), args.model, given=_planned_args(args))
    print(plan.table())
    if args.output:
        write_json_atomic(args.output, plan.to_dict())
        print(f"plan written to {args.output}")
    return 0


MODEL_HELP = (".keras file or zoo entry; give it several times for an ensemble that "
              "averages the models' class probabilities at each case's original grid "
              "(a zoo entry that is an ensemble is one too)")


def _weights(text):
    """The ensemble weights of ``--weights W,W,...``: positive numbers."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(0 < value < float("inf") for value in values):
        raise argparse.ArgumentTypeError(
            f"--weights must be positive numbers separated by commas, one per --model, e.g. "
            f"0.6,0.4. Received: {text!r}")
    return values


def _add_model_options(p):
    """--model (repeatable: an ensemble) and --weights of evaluate and predict."""
    p.add_argument("--model", required=True, action="append", help=MODEL_HELP)
    p.add_argument("--weights", type=_weights, default=None, metavar="W,W,...",
                   help="the ensemble's weight of each --model, in order (normalized; "
                        "default: equal)")


def _predictor(args, command, **options):
    """The predictor of the --model options: a Predictor, or an ensemble of several."""
    from kerasseg.ensemble import predictor

    if args.weights is not None and len(args.weights) != len(args.model):
        raise SystemExit(
            f"kerasseg {command}: --weights gives {len(args.weights)} weight(s) for "
            f"{len(args.model)} --model option(s); give one weight per --model")
    if args.weights is not None and len(args.model) == 1:
        raise SystemExit(f"kerasseg {command}: --weights weighs the members of an ensemble "
                         "of several --model options")
    return predictor(args.model if len(args.model) > 1 else args.model[0],
                     weights=args.weights, **options)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="per-case metrics, report files and figures")
    _add_model_options(p)
    p.add_argument("--data", required=True, help="data set folder with labels")
    p.add_argument("--report", required=True, help="report file (.json; a .csv is written beside it)")
    p.add_argument("--cases", default="auto",
                   help="'auto' (the run's test cases, else its validation cases, when the "
                        "model comes from a run on this data; a zoo entry's held-out cases; "
                        "else all; for an ensemble, those of the first --model), 'all', or "
                        "comma-separated case ids")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--shift-step", type=_shift_step, default=None, metavar="N", help=SHIFT_HELP)
    p.set_defaults(func=_evaluate)


def _given_cases(args, dataset):
    """``--cases all`` or comma-separated ids as ``(cases, description)``; ``None`` for auto."""
    if args.cases == "all":
        return dataset, "all cases"
    if args.cases != "auto":
        ids = [c.strip() for c in args.cases.split(",") if c.strip()]
        return dataset.subset(ids), f"{len(ids)} given case(s)"
    return None


def _model_split(model, dataset):
    """The split (train, val, test ids) a model was trained with on ``dataset``, if known:
    its run's (``run.json`` beside a model file, for a run on this data) or its zoo entry's."""
    from kerasseg.description import RunSpec

    if os.path.exists(model):
        run = RunSpec.read(os.path.join(os.path.dirname(os.path.abspath(model)), "run.json"))
        root = run.data.get("root") if run else None
        if root and os.path.abspath(root) == os.path.abspath(dataset.root):
            return run.split
        return None
    info = _zoo_info(model)
    return info.get("split") if info else None


def _evaluation_cases(args, dataset, model):
    """The cases ``--cases`` picks; for ``auto``, by the rule of ``model``."""
    given = _given_cases(args, dataset)
    if given:
        return given
    split = _model_split(model, dataset) or {}
    from_run = os.path.exists(model)
    if split.get("test"):
        return dataset.subset(split["test"]), (
            "the run's test cases (not used for training or model selection)" if from_run
            else "the zoo entry's held-out cases")
    if from_run and split:
        return dataset.subset(split["val"]), "the run's validation cases (not used for training)"
    return dataset, "all cases"


def _zoo_info(name):
    """A zoo entry's record (an ensemble entry without a split: its first member's)."""
    if os.path.exists(name):
        return None
    try:
        from kerasseg import zoo

        record = zoo.entry(name)
        if "ensemble" in record and not record.get("split"):
            record = zoo.entry(zoo.ensemble_members(name)[0][0])
        return record
    except (ImportError, ValueError, KeyError):
        return None


def _is_ensemble_entry(name):
    if os.path.exists(name):
        return False
    try:
        from kerasseg import zoo

        return zoo.is_ensemble(name)
    except ValueError:  # an unreadable registry: the predictor reports it
        return False


def _evaluate(args):
    from kerasseg.data import load_dataset
    from kerasseg.ensemble import EnsemblePredictor
    from kerasseg.scoring import evaluate_model
    from kerasseg.report import format_summary, plot_history, save_case_panels, write_report

    dataset = load_dataset(args.data)
    first = args.model[0]
    cases, which = _evaluation_cases(args, dataset, first)
    if len(args.model) == 1 and not _is_ensemble_entry(first):
        print(f"evaluating {first} on {len(cases)} case(s) of {dataset.root} ({which})")
    predictor = _predictor(args, "evaluate", tta=args.tta, shifts=args.shift_step)
    ensemble = isinstance(predictor, EnsemblePredictor)
    if ensemble:
        if len(args.model) > 1 and args.cases == "auto":
            which += f", picked for the first model, {first}"
        members = ", ".join(f"{name} (weight {weight:.3g})"
                            for name, weight in zip(predictor.names, predictor.weights))
        print(f"evaluating an ensemble of {len(predictor.members)} models, {members}, on "
              f"{len(cases)} case(s) of {dataset.root} ({which})")
    evaluation = evaluate_model(None, cases, predictor=predictor, keep_predictions=True)
    base = os.path.splitext(args.report)[0]
    extra = {"model": first, "data": dataset.root, "cases": which, "tta": args.tta}
    if len(args.model) > 1:
        extra["model"] = list(args.model)
        extra["weights"] = list(predictor.weights)
    written = write_report(evaluation, args.report, extra=extra)
    panels = save_case_panels(evaluation, cases, base + "_cases.png",
                              class_names=list(predictor.info.class_names) or None)
    outputs = list(written.values()) + [panels]
    history = os.path.join(os.path.dirname(os.path.abspath(first)), "history.csv")
    if not ensemble and os.path.exists(history):  # one run's curves, not the ensemble's
        outputs.append(plot_history(history, base + "_training.png"))
    print(format_summary(evaluation))
    if ensemble:
        print(f"evaluated the ensemble of {', '.join(predictor.names)} (the argmax of their "
              "weighted mean probabilities)")
    print("wrote: " + ", ".join(str(p) for p in outputs))
    return 0


def _max_members(text):
    """``--max-members N``: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--max-members must be a positive whole number. Received: {text!r}")
    return value


def _add_choose_ensemble(sub):
    p = sub.add_parser(
        "choose-ensemble",
        help="score every equal-weight combination of several models on model-selection "
             "cases and name the best")
    p.add_argument("--model", required=True, action="append",
                   help=".keras file or zoo entry; give it two or more times")
    p.add_argument("--data", required=True, help="data set folder with labels")
    p.add_argument("--cases", default="auto",
                   help="'auto' (the first --model's validation cases: its run's, when it "
                        "comes from a run on this data, or its zoo entry's), 'all', or "
                        "comma-separated case ids")
    p.add_argument("--max-members", type=_max_members, default=None, metavar="N",
                   help="the largest combination scored (default: all models)")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--output", default=None,
                   help="write the ranking as JSON to this file (optional)")
    p.set_defaults(func=_choose_ensemble)


def _selection_cases(args, dataset, split):
    """The cases ``choose-ensemble --cases`` picks: ``auto`` is the validation set of the
    first model, whose ``split`` (:func:`_model_split`) is given."""
    given = _given_cases(args, dataset)
    if given:
        return given
    if not split or not split.get("val"):
        raise ValueError(
            f"--cases auto: no validation cases are known for {args.model[0]!r} on "
            f"{dataset.root} (a run's run.json beside the model file, on this data, or a zoo "
            "entry's split names them); give --cases with the ids of cases that no model "
            "trained on")
    return (dataset.subset(split["val"]),
            f"the validation cases of {args.model[0]} (not used for its training)")


def _choose_ensemble(args):
    from kerasseg.data import load_dataset
    from kerasseg.files import write_json_atomic
    from kerasseg.report import format_ranking
    from kerasseg.scoring import rank_ensembles

    if len(args.model) < 2:
        raise SystemExit("kerasseg choose-ensemble: give --model two or more times")
    if args.max_members is not None and args.max_members > len(args.model):
        raise SystemExit(f"kerasseg choose-ensemble: --max-members {args.max_members} is more "
                         f"than the {len(args.model)} --model options")
    dataset = load_dataset(args.data)
    splits = {model: _model_split(model, dataset) for model in args.model}
    cases, which = _selection_cases(args, dataset, splits[args.model[0]])
    chosen_ids = set(cases.case_ids)
    for model, split in splits.items():
        if split is None:
            print(f"note: the cases that trained {model} are not known (no run.json of a run "
                  "on this data beside it, not a zoo entry): make sure none of the scored "
                  "cases did", file=sys.stderr)
            continue
        trained = sorted(chosen_ids & set(split.get("train", [])))
        if trained:
            print(f"warning: {len(trained)} of the {len(chosen_ids)} case(s) trained "
                  f"{model} ({', '.join(trained[:5])}{', ...' if len(trained) > 5 else ''}): "
                  "scores on them favour it", file=sys.stderr)
    print(f"scoring every combination of {len(args.model)} models on {len(cases)} case(s) "
          f"of {dataset.root} ({which})")
    result = rank_ensembles(args.model, cases, max_members=args.max_members, tta=args.tta)
    print(format_ranking(result))
    best = result["ranking"][0]["members"]
    words = ["kerasseg", "evaluate"] + [word for name in best for word in ("--model", name)]
    words += (["--tta"] if args.tta else []) + ["--data", args.data, "--report", "REPORT.json"]
    command = shlex.join(words)
    held_out = set((splits[best[0]] or {}).get("test") or ())
    if held_out and not held_out & chosen_ids:
        print(f"chosen: {' + '.join(best)}; score it once on held-out cases (the test cases "
              f"of {best[0]}, which --cases auto picks) with `{command}`")
    else:
        print(f"chosen: {' + '.join(best)}; no held-out cases apart from the scored ones are "
              f"known for {best[0]}: score it once with `{command} --cases ID,ID,...` on "
              "cases that no model trained on and that were not scored here")
    if args.output:
        write_json_atomic(args.output, {**result, "data": dataset.root, "cases": which,
                                        "tta": args.tta, "chosen": best})
        print(f"wrote: {args.output}")
    return 0


def _add_predict(sub):
    p = sub.add_parser("predict", help="segment image files; write each in its input's format")
    _add_model_options(p)
    p.add_argument("--input", required=True, help="image file or folder")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--overlap", type=float, default=0.5, help="tile overlap (large 2-D images)")
    p.add_argument("--shift-step", type=_shift_step, default=None, metavar="N", help=SHIFT_HELP)
    p.set_defaults(func=_predict)


def _predict(args):
    from kerasseg.inference import predict_path

    predictor = _predictor(args, "predict", tta=args.tta, overlap=args.overlap,
                           shifts=args.shift_step)
    written = predict_path(None, args.input, args.output, predictor=predictor)
    for source, target in written:
        print(f"{source} -> {target}")
    print(f"{len(written)} prediction(s) written to {args.output}")
    return 0


def _add_export(sub):
    from kerasseg.export.tflite import QUANTIZE_MODES

    p = sub.add_parser("export", help="SavedModel for TF Serving and/or TFLite")
    p.add_argument("--model", required=True, help=".keras file or zoo entry")
    p.add_argument("--saved-model", help="TF Serving model folder (DIR/<version>/ is written)")
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--name", default=None, help="served model name (default: folder name)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--tflite", help=".tflite file to write")
    p.add_argument("--quantize", default="none", choices=list(QUANTIZE_MODES))
    p.add_argument("--data", help="data set for int8 calibration and the parity report")
    p.set_defaults(func=_export)


def _export(args):
    from kerasseg.deploy import export_trained

    if not args.saved_model and not args.tflite:
        raise SystemExit("kerasseg export: give --saved-model DIR and/or --tflite FILE")
    result = export_trained(
        args.model, saved_model_dir=args.saved_model, version=args.version,
        model_name=args.name, tflite_path=args.tflite, quantize=args.quantize,
        data=args.data, overwrite=args.overwrite,
    )
    if result["saved_model"]:
        print(f"SavedModel written: {result['saved_model']}")
    if result["tflite"]:
        size = os.path.getsize(result["tflite"]) / 1e6
        print(f"TFLite written: {result['tflite']} ({args.quantize}, {size:.2f} MB)")
    if result["parity"] is not None:
        print(result["parity"])
    return 0


def _add_zoo(sub):
    p = sub.add_parser("zoo", help="list, describe and download trained weights")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    zsub.add_parser("list", help="list the entries")
    info = zsub.add_parser("info", help="show one entry's card")
    info.add_argument("name")
    download = zsub.add_parser("download", help="fetch an entry into the cache and check it")
    download.add_argument("name")
    p.set_defaults(func=_zoo)


def _zoo(args):
    from kerasseg import zoo

    if args.zoo_command == "list":
        print(zoo.format_table())
    elif args.zoo_command == "info":
        print(zoo.card(args.name))
    elif zoo.is_ensemble(args.name):
        for member in zoo.ensemble_members(args.name)[0]:
            print(f"{args.name}: {member}: {zoo.fetch(member)}")
    else:
        print(f"{args.name}: {zoo.fetch(args.name)}")
    return 0


# The sub-commands that run models, and so look for devices first.
COMPUTING_COMMANDS = ("train", "evaluate", "choose-ensemble", "predict", "export")


def build_parser():
    """Return the ``kerasseg`` argument parser.

    Returns:
        An ``argparse.ArgumentParser`` with the global ``-v`` (count, see
        :mod:`kerasseg.verbosity`) and the sub-commands plan, train, evaluate,
        choose-ensemble, predict, export and zoo.

    Example:
        >>> args = build_parser().parse_args(["-vv", "zoo", "info", "hippocampus-unet"])
        >>> args.verbosity, args.command, args.name
        (2, 'zoo', 'hippocampus-unet')
    """
    parser = argparse.ArgumentParser(
        prog="kerasseg", description="Medical image segmentation with Keras: plan, train, "
        "evaluate, choose ensembles, predict, export and the model zoo.")
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="count", default=0,
        help="show more logging, before the command: -v kerasseg's log and TensorFlow's "
             "and Keras' warnings, -vv everything, TensorFlow's start-up lines included "
             "(default: TensorFlow errors only)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_plan, _add_train, _add_evaluate, _add_choose_ensemble, _add_predict,
                _add_export, _add_zoo):
        add(sub)
    return parser


def main(argv=None):
    """Run the ``kerasseg`` command.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for a usage error, 1 for invalid input (the
        message names the file or argument).

    Example:
        >>> main(["zoo", "list"])  # doctest: +ELLIPSIS
        name ...
        hippocampus-deeplab ...
        0
    """
    from kerasseg import verbosity

    args = build_parser().parse_args(argv)
    verbosity.configure(args.verbosity, devices=args.command in COMPUTING_COMMANDS)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"kerasseg {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
