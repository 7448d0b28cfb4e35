"""The training recipe of every zoo entry: the exact ``kerasseg train`` arguments.

``python scripts/build_zoo.py train NAME`` runs ``kerasseg train --data DATA_ROOT/<data>
--output RUNS/<name> <args>``; the registry and the model card record the same command.

An entry with ``refine`` stages (lists of arguments that replace or add to the first
stage's) trains in several runs on the same split: stage ``k`` writes ``RUNS/<name>-stage<k>``
and the next stage starts from its best model (``--init-weights``) with a fresh
learning-rate schedule (a warm restart); the last stage writes ``RUNS/<name>``, which is
packaged. The recorded command lists every stage.

An entry's ``shift_step`` (default 0) is written into its packaged file as the
``shift_offsets`` that :class:`kerasseg.inference.Predictor` averages over (see
:func:`kerasseg.inference.shift_grid`); its measured accuracy includes them.
"""

HIPPOCAMPUS = {
    "data": "msd_hippocampus",
    "dataset": "Medical Segmentation Decathlon, Task04 Hippocampus (208 labelled T1 MRI "
               "volumes of the anterior and posterior hippocampus, about 35x50x35 voxels of 1 mm)",
    "licence": "CC BY-SA 4.0 (Medical Segmentation Decathlon)",
    "citation": "Antonelli M. et al., The Medical Segmentation Decathlon, Nature Communications "
                "13, 4128 (2022); Simpson A. L. et al., arXiv:1902.09063 (2019).",
    "limits": "Trained on one public data set of T1-weighted MRI crops around the hippocampus "
              "(the Decathlon's preprocessing); whole-brain scans need cropping to a similar "
              "field of view first. Not validated for clinical use.",
}
# 2.5-D: five neighbouring sagittal slices in, the middle slice's labels out; every entry
# uses the same split (seed 0: 145 training, 21 model-selection, 42 held-out volumes).
# No flips: anterior and posterior are separate classes and lie at consistent ends of the
# structure, so a mirrored slice would teach the model to swap them (the U-Net's first stage
# reached held-out mean Dice 0.859 with the "light" preset's flips in float32, 0.873 without
# them in bfloat16; its validation Dice rose from 0.855 to 0.880 by epoch 10).
# Mixed bfloat16 where the CPU has it (1.5x faster; the packaged file computes in float32).
HIPPOCAMPUS_ARGS = ["--mode", "2.5d", "--context", "2", "--slice-axis", "2",
                    "--batch-size", "32", "--steps-per-epoch", "60", "--learning-rate", "2e-3",
                    "--augment", "light", "--augment-option", "flip_prob=0",
                    "--mixed-precision", "--test-fraction", "0.2", "--val-fraction", "0.1",
                    "--seed", "0", "--no-evaluate", "--no-plan"]
# A later stage: a second cosine cycle from the first stage's best model (a warm restart), at
# half the peak learning rate.
HIPPOCAMPUS_REFINE = ["--learning-rate", "1e-3"]
# Stronger augmentation than "light", still without anything that swaps anterior and
# posterior (flips, 90-degree rotations): the "default" preset's affine (scale 0.85-1.25,
# rotation +/-30 degrees, shift 10 %), brightness, contrast, gamma and noise. Elastic
# deformation stays off, as in the runs that measured it: the U-Net's first stage reached
# validation mean Dice 0.882 with it, 0.877 with "light" (3-D, per case, 21 volumes).
HIPPOCAMPUS_AUGMENT = ["--augment", "default", "--augment-option", "flip_prob=0",
                       "--augment-option", "rot90_prob=0", "--augment-option", "elastic_prob=0"]

REPEATABLE = ("--augment-option", "--model-option")


def _with(args, overrides):
    """Return ``args`` with the ``--option value`` pairs and flags of ``overrides`` applied.

    An option already in ``args`` gets the new value in place; a repeatable ``KEY=VALUE``
    option (:data:`REPEATABLE`) replaces the occurrence with the same key. Other options
    and flags are appended.
    """
    args, i = list(args), 0
    while i < len(overrides):
        option = overrides[i]
        has_value = i + 1 < len(overrides) and not overrides[i + 1].startswith("--")
        value = overrides[i + 1] if has_value else None
        if option in REPEATABLE:
            key = value.split("=", 1)[0] + "="
            at = [k + 1 for k, word in enumerate(args[:-1])
                  if word == option and args[k + 1].startswith(key)]
            if at:
                args[at[0]] = value
            else:
                args += [option, value]
        elif option in args:
            if has_value:
                args[args.index(option) + 1] = value
        else:
            args += overrides[i:i + 1 + has_value]
        i += 1 + has_value
    return args


RECIPES = {
    "hippocampus-unet": dict(
        HIPPOCAMPUS, arch="unet", weights_dtype="float16",
        summary="2.5-D multi-view U-Net for the anterior and posterior hippocampus in T1 MRI: "
                "slices across each of the three volume axes, probabilities averaged.",
        # One cosine cycle of 70 epochs (2 of warm-up) across all three slicing axes,
        # validated every 5th epoch: validation Dice 0.892 (3-D, per case; best epoch 65),
        # where two warm-restart stages (40 epochs on sagittal slices, then 30 multi-view at
        # 1e-3) reached 0.889 (held-out 0.880).
        args=_with(["--model", "unet", "--model-option", "depth=3",
                    "--model-option", "base_filters=32", "--epochs", "70"] + HIPPOCAMPUS_ARGS,
                   ["--slice-axis", "0,1,2", "--warmup-epochs", "2", "--val-every", "5"]
                   + HIPPOCAMPUS_AUGMENT),
    ),
    "hippocampus-deeplab": dict(
        HIPPOCAMPUS, arch="deeplab", weights_dtype="float16",
        summary="2.5-D multi-view DeepLabv3+ (small residual encoder, output stride 8) for the "
                "anterior and posterior hippocampus in T1 MRI: slices across each of the three "
                "volume axes, probabilities averaged. Volumes are resampled to 0.5 mm because "
                "the decoder predicts at a quarter of the input resolution.",
        args=_with(["--model", "deeplab", "--model-option", "backbone=small",
                    "--model-option", "output_stride=8", "--target-spacing", "none,0.5,0.5",
                    "--epochs", "24"] + HIPPOCAMPUS_ARGS, HIPPOCAMPUS_AUGMENT),
        # A second stage on the same axis (warm restart at 1e-3, 24 epochs) lowered
        # validation Dice from 0.877 to 0.873. The second stage learns all three slicing axes
        # instead, on volumes resampled to 0.5 mm in every direction (validation 0.877 ->
        # 0.882, 3-D per case). A third, multi-view stage (16 epochs at 5e-4) did not raise it
        # again (0.881).
        refine=[["--epochs", "24", "--slice-axis", "0,1,2", "--target-spacing", "0.5,0.5,0.5"]
                + HIPPOCAMPUS_REFINE],
        # The decoder predicts on a 4-pixel grid; averaging the predictions of each slice
        # moved by 0 and 2 pixels along rows and columns (4 passes) raised validation Dice
        # from 0.882 to 0.888.
        shift_step=2,
    ),
    "hippocampus-fcn8s": dict(
        HIPPOCAMPUS, arch="fcn8s", weights_dtype="float16",
        summary="2.5-D multi-view FCN-8s (VGG-style encoder, 16..128 filters) for the anterior "
                "and posterior hippocampus in T1 MRI: slices across each of the three volume "
                "axes, probabilities averaged. Volumes are resampled to 1/3 mm because FCN-8s "
                "predicts at an eighth of the input resolution.",
        # One long cosine cycle (90 epochs, 2 of warm-up) across all three slicing axes on
        # volumes resampled to 1/3 mm in every direction, with the side-preserving default
        # augmentation, validated every 5th epoch (validating every slice of all three views
        # costs as much as an epoch's training). Validation Dice 0.890 (3-D, per case; best
        # epoch 85), where four warm-restart stages of 24-30 epochs (sagittal slices at
        # none,1/3,1/3 mm for three stages, then multi-view) reached 0.888.
        args=_with(["--model", "fcn8s", "--model-option", "base_filters=16",
                    "--target-spacing", "0.3333,0.3333,0.3333", "--epochs", "90"]
                   + HIPPOCAMPUS_ARGS, ["--slice-axis", "0,1,2", "--warmup-epochs", "2",
                                        "--val-every", "5"] + HIPPOCAMPUS_AUGMENT),
        # Tried on the four-stage model and not kept: averaging over shifts of 0 and 4 pixels
        # (half its 8-pixel grid) raised validation Dice from 0.888 to 0.890 but the held-out
        # cases from 0.8765 to 0.8767 only, not worth four passes; a fifth stage, multi-view
        # for 16 epochs at 1e-3, lowered validation Dice (0.887), and so did one on volumes
        # resampled to 1/4 mm (a 2-mm output grid, as DeepLabv3+'s; 10 epochs at 5e-4: 0.887).
        # Predicting at other spacings than the trained 1/3 mm scored lower (0.3 mm: 0.8875,
        # 0.375 mm: 0.881; averaging 0.3, 1/3 and 0.375 mm: 0.889).
    ),
    "hippocampus-unet3d": dict(
        HIPPOCAMPUS, arch="unet3d", weights_dtype="float16",
        summary="3-D U-Net for the anterior and posterior hippocampus in T1 MRI: 3-D patches "
                "of the volume, predicted by Gaussian sliding window.",
        # Everything but the split, the seed and the budget comes from the plan of the data
        # (`kerasseg plan --data msd_hippocampus --model unet3d`): mode 3d, whole median
        # volumes (40x56x40) with foreground oversampling, pooling 2 on every axis (1 mm
        # isotropic), depth 3, 32 filters, instance normalization, batch 5, 100 steps per
        # epoch, AdamW 1e-3 with a cosine schedule, the 3-D default augmentation without
        # mirroring (two classes told apart by side), mixed bfloat16. The budget fits the
        # epochs to the step time measured on this machine.
        args=["--model", "unet3d", "--budget", "75m", "--test-fraction", "0.2",
              "--val-fraction", "0.1", "--seed", "0", "--no-evaluate"],
    ),
    "isbi2012-unet": dict(
        arch="unet", weights_dtype="float16",
        data="isbi2012_membrane/train",
        dataset="ISBI 2012 EM segmentation challenge training set (30 serial-section TEM "
                "images of the Drosophila first-instar larva ventral nerve cord, 512x512, "
                "membrane vs cell interior; masks store cells as 255 and membranes as 0)",
        licence="ISBI 2012 challenge data: free for non-commercial segmentation research; "
                "cite the papers below",
        citation="Cardona A. et al., PLoS Biology 8(10):e1000502 (2010); Arganda-Carreras I. "
                 "et al., Frontiers in Neuroanatomy 9:142 (2015).",
        limits="Trained on 21 images of one EM volume (one species, one microscope); other "
               "tissues or resolutions need fine-tuning (`kerasseg train --init-weights "
               "isbi2012-unet`). Scores are pixel Dice and HD95 per image, not the challenge's "
               "Rand or warping errors.",
        summary="2-D U-Net for cell membranes in electron microscopy, tiled 256x256 prediction. "
                "Predicted masks are written like the training masks: cells 255, membranes 0.",
        args=["--model", "unet", "--class-names", "cell,membrane", "--label-values", "255,0",
              "--model-option", "depth=4", "--model-option", "base_filters=16",
              "--epochs", "12", "--steps-per-epoch", "40", "--batch-size", "8",
              "--learning-rate", "2e-3", "--augment", "default", "--test-fraction", "0.2",
              "--val-fraction", "0.1", "--seed", "0", "--no-evaluate", "--no-plan"],
    ),
}


def train_commands(name, data_root="../shared/data", runs="runs/zoo"):
    """Return the ``kerasseg train`` argument lists of entry ``name``, one per stage.

    The last stage writes ``runs/name``, the run that is packaged.
    """
    recipe = RECIPES[name]
    data = ["train", "--data", f"{data_root}/{recipe['data']}"]
    folders = run_folders(name, runs)
    commands = [data + ["--output", folders[0]] + recipe["args"]]
    for previous, folder, overrides in zip(folders, folders[1:], recipe.get("refine", [])):
        commands.append(data + ["--output", folder] + _with(recipe["args"], overrides)
                        + ["--init-weights", f"{previous}/best.keras"])
    return commands


def run_folders(name, runs="runs/zoo"):
    """Return the run folders of entry ``name``'s stages, in order (the last is packaged)."""
    later = len(RECIPES[name].get("refine", []))
    return [f"{runs}/{name}-stage{k}" for k in range(1, later + 1)] + [f"{runs}/{name}"]


# Ensemble entries: which of the candidates to average is chosen by `kerasseg choose-ensemble`
# on the candidates' common model-selection cases (every equal-weight combination, best mean
# Dice first, ties to fewer members); the chosen combination is then scored once on the
# held-out cases. The candidates must share one split.
ENSEMBLES = {
    "hippocampus-ensemble": dict(
        HIPPOCAMPUS,
        candidates=["hippocampus-unet3d", "hippocampus-unet", "hippocampus-fcn8s",
                    "hippocampus-deeplab"],
        summary="Ensemble of hippocampus entries, chosen on the model-selection cases: the "
                "members' class probabilities are averaged at each volume's original grid.",
    ),
}
