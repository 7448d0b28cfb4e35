"""The MONAI side of ``benchmarks/volumetric.py``: one measurement per process, torch on the CPU.

Runs in its own virtual environment (NumPy, torch, MONAI; neither TensorFlow nor kerasseg):

    PEER_PYTHON benchmarks/volumetric_peer.py SPEC_JSON RESULT_JSON

Spec kinds (``benchmarks/volumetric.py`` writes them):

* ``{"kind": "versions"}``: Python, torch, MONAI and NumPy versions, torch's threads;
* ``{"kind": "train", "configs": [...]}``: for each config (``net``, ``patch``, ``batch``,
  ``classes``, ``widths``, ``warmup``, ``steps``, ``seed``) train ``warmup + steps`` steps
  on one fixed random batch and time the last ``steps``;
* ``{"kind": "infer", ...}``: ``sliding_window_inference`` of one volume (``volume``:
  ``{"kind": "npy", "path": ...}`` or ``{"kind": "synthetic", "shape": [...], "seed": 0}``)
  at ``patch``, ``overlap``, ``sigma_scale``, ``sw_batch``, Gaussian blending, after a
  warm-up window; seconds per call, windows, RSS before the timed calls and peak RSS.

Volumes are ``(D, H, W)`` float32, given to MONAI as ``(1, 1, D, H, W)``.
"""

import json
import platform
import resource
import statistics
import sys
import time
import traceback

import numpy as np

MIB = 1024 ** 2


def current_rss_mib():
    """Resident memory now (Linux ``/proc/self/statm``), MiB."""
    with open("/proc/self/statm", encoding="utf-8") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / MIB


def peak_rss_mib():
    """Peak resident memory of this process so far (``ru_maxrss`` is KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions():
    import monai
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "monai": monai.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available())}


def build_net(net, classes, widths, depth):
    """MONAI's network ``net`` with kerasseg ``unet3d``'s widths (see the report's notes).

    Args:
        net: ``"dynunet"`` or ``"basicunet"``.
        classes: output channels.
        widths: kerasseg's widths, levels then bottleneck (``depth + 1`` of them).
        depth: kerasseg's poolings.
    """
    from monai.networks.nets import BasicUNet, DynUNet

    if net == "dynunet":
        return DynUNet(3, 1, classes, kernel_size=[3] * (depth + 1),
                       strides=[1] + [2] * depth, upsample_kernel_size=[2] * depth,
                       filters=list(widths), norm_name=("INSTANCE", {"affine": True}),
                       act_name="relu", res_block=False, trans_bias=True)
    if net == "basicunet":
        return BasicUNet(3, 1, classes, features=basicunet_features(widths), act="relu",
                         norm=("instance", {"affine": True}), bias=False)
    raise ValueError(f"`net` must be 'dynunet' or 'basicunet'. Received: net={net!r}")


def basicunet_features(widths, cap=320):
    """BasicUNet's six features from kerasseg's widths: five levels (kerasseg's, continued
    by doubling up to ``cap``), then the last decoder level's width (the first level's).

    Example:
        >>> basicunet_features([32, 64, 128, 256])
        (32, 64, 128, 256, 320, 32)
    """
    levels = list(widths)
    while len(levels) < 5:
        levels.append(min(2 * levels[-1], cap))
    return tuple(levels[:5]) + (levels[0],)


def forward_flops(net, patch):
    """Forward FLOPs for one volume, by ``torch.utils.flop_counter`` (convolutions only)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros((1, 1) + tuple(patch)))
    return int(counter.get_total_flops())


def train(config):
    import torch
    from monai.losses import DiceCELoss

    torch.manual_seed(config.get("seed", 0))
    patch, batch, classes = tuple(config["patch"]), config["batch"], config["classes"]
    net = build_net(config["net"], classes, config["widths"], config["depth"])
    params = sum(p.numel() for p in net.parameters())
    flops = forward_flops(net, patch)
    net.train()
    rng = np.random.default_rng(config.get("seed", 0))
    images = torch.from_numpy(rng.normal(size=(batch, 1) + patch).astype("float32"))
    labels = torch.from_numpy(rng.integers(0, classes, size=(batch, 1) + patch).astype("int64"))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    parameters = [p for p in net.parameters() if p.requires_grad]
    precision = config.get("precision", "float32")
    losses, times = [], []
    for step in range(config["warmup"] + config["steps"]):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        # bfloat16: forward pass and loss under autocast (torch's mixed precision on CPU).
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = loss_fn(net(images), labels)
        loss.backward()
        for p in parameters:  # per-variable clipping, as Keras' clipnorm
            torch.nn.utils.clip_grad_norm_([p], 12.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - start
        if step >= config["warmup"]:
            times.append(elapsed)
    median = statistics.median(times)
    return {"framework": "monai", "net": config["net"], "patch": list(patch),
            "precision": precision, "batch": batch,
            "classes": classes, "params_m": params / 1e6, "forward_gflops": flops / 1e9,
            "step_s_median": median, "step_s_best": min(times), "steps": len(times),
            "voxels_per_s": batch * int(np.prod(patch)) / median,
            "gflops_per_s": 3 * flops * batch / median / 1e9, "losses": losses,
            "threads": torch.get_num_threads()}


def load_volume(volume):
    """The ``(D, H, W)`` float32 volume a spec names."""
    if volume["kind"] == "npy":
        return np.load(volume["path"]).astype("float32", copy=False)
    if volume["kind"] == "synthetic":
        rng = np.random.default_rng(volume.get("seed", 0))
        return rng.standard_normal(tuple(volume["shape"]), dtype=np.float32)
    raise ValueError(f"unknown volume kind {volume['kind']!r}")


def infer(spec):
    import torch
    from monai.inferers import sliding_window_inference

    torch.manual_seed(spec.get("seed", 0))
    patch = tuple(spec["patch"])
    data = load_volume(spec["volume"])
    net = build_net(spec["net"], spec["classes"], spec["widths"], spec["depth"]).eval()
    counted = {"windows": 0}

    def predictor(windows):
        counted["windows"] += int(windows.shape[0])
        return torch.softmax(net(windows), dim=1)

    def run(array):
        inputs = torch.from_numpy(array)[None, None]  # no copy
        return sliding_window_inference(
            inputs, patch, spec["sw_batch"], predictor, overlap=spec["overlap"],
            mode="gaussian", sigma_scale=spec["sigma_scale"])

    times = []
    with torch.inference_mode():
        run(np.zeros(patch, "float32"))  # warm-up: one window
        counted["windows"] = 0
        before = current_rss_mib()
        for _ in range(spec.get("repeats", 1)):
            start = time.perf_counter()
            out = run(data)
            times.append(time.perf_counter() - start)
            shape = list(out.shape)
            del out
    return {"framework": "monai", "net": spec["net"], "volume": spec["label"],
            "shape": list(data.shape), "patch": list(patch),
            "windows": counted["windows"] // len(times), "output_shape": shape,
            "seconds_median": statistics.median(times), "seconds_best": min(times),
            "repeats": len(times), "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(),
            "rss_rise_mib": peak_rss_mib() - before, "threads": torch.get_num_threads()}


def run_spec(spec):
    kind = spec.get("kind")
    if kind == "versions":
        return versions()
    if kind == "train":
        rows = []
        for config in spec["configs"]:
            try:
                rows.append(train(config))
            except Exception as error:  # noqa: BLE001 - one config must not stop the rest
                traceback.print_exc()
                rows.append({"framework": "monai", "net": config.get("net"),
                             "patch": config.get("patch"),
                             "error": f"{type(error).__name__}: {error}"})
        return rows
    if kind == "infer":
        return infer(spec)
    raise ValueError(f"unknown spec kind {kind!r}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec, result_path = json.loads(argv[0]), argv[1]
    result = run_spec(spec)
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
