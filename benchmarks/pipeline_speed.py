"""Input pipeline throughput (images/s) next to U-Net training-step throughput.

Measures :func:`kerasseg.data.make_dataset` on the real data sets with the default
augmentation, for both augmentation backends:

* MSD hippocampus MRI, 2-D axial slices padded to 64x64, batch 32;
* ISBI 2012 EM membranes, 256x256 patches, batch 8;

then, for each configuration, the default U-Net's training step (``train_on_batch``, AdamW, Dice +
cross-entropy loss) on batches of the same shape, and prints a table with the
ratio pipeline / training (above 1: the pipeline keeps up with training).

Usage:
    python benchmarks/pipeline_speed.py                 # everything
    python benchmarks/pipeline_speed.py --no-training   # the pipeline only
    python benchmarks/pipeline_speed.py --data /path/to/shared/data --batches 40

The data folder defaults to ``$KERASSEG_DATA`` or ``../shared/data`` beside the repository.

Set ``TF_CPP_MIN_LOG_LEVEL=2`` to silence TensorFlow's start-up messages. Throughput
depends on the CPU count and on what else runs on the machine; the table prints the
core count it was measured with.
"""

import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = pathlib.Path(os.environ.get("KERASSEG_DATA", ROOT.parent / "shared" / "data"))

CONFIGS = (
    # name, data folder, patch size, batch size, number of cases (None: all)
    ("hippocampus 64x64", "msd_hippocampus", (64, 64), 32, 40),
    ("EM 256x256", "isbi2012_membrane/train", (256, 256), 8, None),
)
BACKENDS = ("albumentations", "tf")


def pipeline_images_per_second(dataset, batches, warmup=3):
    """Images per second delivered by ``dataset`` over ``batches`` batches after ``warmup``."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    count = 0
    start = time.perf_counter()
    for _ in range(batches):
        images, _ = next(iterator)
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def pipeline_rate(cases, patch_size, batch_size, backend, batches, augment="default", **options):
    """Build the training pipeline of ``cases`` and measure the images/s it delivers.

    Args:
        cases: a ``CaseDataset`` (or a list of its cases).
        patch_size: ``(height, width)`` of the batches.
        batch_size: images per batch.
        backend: the augmentation backend, ``"albumentations"`` or ``"tf"``.
        batches: timed batches (after 3 untimed ones).
        augment: the augmentation preset.
        **options: further :func:`kerasseg.data.make_dataset` options, such as
            ``mode="2.5d", context=2, slice_axis=2``.

    Returns:
        ``(images_per_second, prepare_seconds, dataset)``: the rate, the time
        ``make_dataset`` took (loading and preprocessing every case) and the dataset.

    Example:
        >>> rate, prepare_s, dataset = pipeline_rate(cases, (64, 64), 32, "tf", batches=10)  # doctest: +SKIP
    """
    from kerasseg.data.pipeline import make_dataset

    start = time.perf_counter()
    dataset = make_dataset(
        cases, patch_size=tuple(patch_size), batch_size=batch_size, augment=augment,
        augment_backend=backend, seed=0, **options
    )
    prepare_s = time.perf_counter() - start
    return pipeline_images_per_second(dataset, batches), prepare_s, dataset


def training_images_per_second(input_shape, num_classes, batch_size, batches=10, warmup=2):
    """Training-step throughput of a plain U-Net on random batches of the given shape.

    The U-Net is the default one (``depth=4, base_filters=32``, batch normalization),
    trained with the default Dice + cross-entropy loss and AdamW as ``kerasseg train`` does.
    """
    import numpy as np

    import keras

    import kerasseg
    from kerasseg.training.recipe import make_loss

    model = kerasseg.build("unet", input_shape=input_shape, num_classes=num_classes)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=make_loss("dice_ce", num_classes))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch_size,) + tuple(input_shape)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch_size,) + tuple(input_shape[:2])).astype("int32")
    for _ in range(warmup):
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(batches):
        model.train_on_batch(images, labels)
    return batches * batch_size / (time.perf_counter() - start)


def _row(cells, widths):
    return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding msd_hippocampus/ and isbi2012_membrane/")
    parser.add_argument("--batches", type=int, default=30, help="timed pipeline batches per configuration")
    parser.add_argument("--train-batches", type=int, default=10, help="timed training steps per configuration")
    parser.add_argument("--no-training", action="store_true", help="measure the pipeline only")
    parser.add_argument("--augment", default="default", help="augmentation preset")
    args = parser.parse_args(argv)

    from kerasseg.data.dataset import load_dataset

    rows = []
    for name, folder, patch, batch, n_cases in CONFIGS:
        path = pathlib.Path(args.data) / folder
        if not path.is_dir():
            print(f"skipping {name}: {path} not found")
            continue
        cases = load_dataset(path)
        if n_cases is not None:
            cases = cases.subset(cases.case_ids[:n_cases])
        train_rate = None
        if not args.no_training:
            print(f"{name}: timing the U-Net training step ...", flush=True)
            train_rate = training_images_per_second(
                patch + (1,), cases.num_classes, batch, batches=args.train_batches
            )
        for backend in BACKENDS:
            rate, prepare_s, _ = pipeline_rate(cases, patch, batch, backend, args.batches, augment=args.augment)
            ratio = f"{rate / train_rate:.1f}x" if train_rate else "-"
            train = f"{train_rate:.1f}" if train_rate else "-"
            rows.append((name, len(cases), batch, backend, f"{prepare_s:.1f}", f"{rate:.0f}", train, ratio))
            print(f"  {name} / {backend}: {rate:.0f} images/s", flush=True)

    header = ("data", "cases", "batch", "augment backend", "prepare s", "pipeline img/s", "train img/s", "pipeline/train")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print()
    print(f"Pipeline vs training throughput (augment={args.augment!r}, {os.cpu_count()} CPU cores)")
    print(_row(header, widths))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(_row(row, widths))
    return rows


if __name__ == "__main__":
    main()
