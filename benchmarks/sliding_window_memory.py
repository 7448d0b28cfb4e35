"""Memory and time of :func:`kerasseg.sliding_window.sliding_window_predict` on a large volume.

The window machinery alone is measured: ``predict_fn`` is a stand-in without a network that
returns a fixed probability ``1 / K`` for every class, so the numbers are those of cutting
windows, weighting them with the Gaussian importance map and accumulating them. The volume
(single-channel float32, filled so that its pages are resident) is made before the
measurement; what the call adds is compared with its two accumulators, a ``(D, H, W, K)``
sum and a ``(D, H, W)`` weight map in float32, ``(K + 1) * 4 * D * H * W`` bytes, which are
the only volume-sized arrays it should allocate.

Columns: the process' peak RSS (``resource.getrusage``, which includes the volume and the
libraries), the rise of the peak RSS over the RSS just before the call, the peak of the
memory NumPy allocates during the call (``tracemalloc``), each of the last two divided by
the accumulator bytes, and the wall time of the call (with ``tracemalloc`` running).

Usage:
    python benchmarks/sliding_window_memory.py            # 512x512x300 at patch 128^3, overlap 0.5
    python benchmarks/sliding_window_memory.py --small    # 128x128x96 at patch 64^3: a quick check
    python benchmarks/sliding_window_memory.py --classes 3 --batch-size 4

The full size allocates about 1.3 GB on top of the libraries (importing kerasseg loads
TensorFlow): the volume, 0.31 GB, and the accumulators, 0.94 GB for K = 2. Run it on an
otherwise idle machine.
"""

import argparse
import pathlib
import resource
import sys
import time
import tracemalloc

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.suite.tables import markdown_table  # noqa: E402
from kerasseg.sliding_window import sliding_window_predict, window_starts  # noqa: E402

FULL = {"shape": (512, 512, 300), "patch": (128, 128, 128)}
SMALL = {"shape": (128, 128, 96), "patch": (64, 64, 64)}
MB = 1024 ** 2


def current_rss():
    """The process' resident memory now, in bytes (Linux ``/proc/self/statm``)."""
    pages = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def peak_rss():
    """The process' peak resident memory so far, in bytes (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def window_count(shape, patch, overlap):
    """Windows ``sliding_window_predict`` visits: the product of the starts per axis."""
    return int(np.prod([len(window_starts(max(n, p), p, overlap))
                        for n, p in zip(shape, patch)]))


def measure(shape, patch, classes, overlap, batch_size):
    """Run one call on a filled volume; return a dict of the measurements."""
    volume = np.ones(tuple(shape) + (1,), "float32")

    def predict_fn(batch):
        return np.full(batch.shape[:-1] + (classes,), 1.0 / classes, "float32")

    accumulators = (classes + 1) * 4 * int(np.prod(shape))
    before = current_rss()
    tracemalloc.start()
    tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    out = sliding_window_predict(volume, predict_fn, patch, classes, overlap=overlap,
                                 batch_size=batch_size)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] - traced_before
    tracemalloc.stop()
    peak = peak_rss()
    error = float(np.abs(out - 1.0 / classes).max())   # every window agrees: 1 / K
    return {"shape": shape, "patch": patch, "windows": window_count(shape, patch, overlap),
            "accumulators": accumulators, "volume": volume.nbytes, "peak_rss": peak,
            "rss_rise": peak - before, "traced": traced, "seconds": seconds, "error": error}


def table(result):
    """The measurements as a Markdown table (sizes in MiB)."""
    def size(values):
        return "x".join(str(v) for v in values)

    headers = ["volume", "patch", "windows", "accumulators MiB", "peak RSS MiB",
               "call RSS rise MiB", "rise / acc.", "NumPy peak MiB", "NumPy / acc.", "wall s"]
    row = [size(result["shape"]), size(result["patch"]), str(result["windows"]),
           f"{result['accumulators'] / MB:.1f}", f"{result['peak_rss'] / MB:.1f}",
           f"{result['rss_rise'] / MB:.1f}", f"{result['rss_rise'] / result['accumulators']:.2f}",
           f"{result['traced'] / MB:.1f}", f"{result['traced'] / result['accumulators']:.2f}",
           f"{result['seconds']:.2f}"]
    return markdown_table(headers, [row], align="llrrrrrrrr")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="128x128x96 at patch 64^3 instead of 512x512x300 at 128^3")
    parser.add_argument("--classes", type=int, default=2, help="K, the class count (default 2)")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args(argv)
    config = SMALL if args.small else FULL
    result = measure(config["shape"], config["patch"], args.classes, args.overlap,
                     args.batch_size)
    print(f"K = {args.classes}, overlap {args.overlap}, batch {args.batch_size}; accumulators "
          f"(K + 1) * 4 * voxels = {result['accumulators']:,} B; volume {result['volume']:,} B; "
          f"max |output - 1/K| = {result['error']:.1e}\n")
    print(table(result))
    return result


if __name__ == "__main__":
    main()
