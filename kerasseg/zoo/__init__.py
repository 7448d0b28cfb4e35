"""The model zoo: trained weights by name, checked by SHA-256, with their model cards.

The registry (``registry.json`` beside this module) lists each entry with its architecture,
file name, size, SHA-256, download URL, parameter count, class names and measured metrics.
The entries' files ship inside the package, in ``kerasseg/zoo/weights/``: each entry's
``.keras`` file, its model card (``NAME.md``), its per-case metrics (``NAME.metrics.json``)
and its golden output on one held-out case (``NAME.golden.npz``). So an installed kerasseg
predicts with any entry from any folder, with no source checkout and no network.

:func:`fetch` finds an entry's file, in this order:

1. the entries' folder: ``$KERASSEG_ZOO_DIR`` when it is set (it replaces the bundled
   folder), else the package's ``weights/`` folder (:func:`weights_dir`);
2. the local cache (``$KERASSEG_CACHE`` or ``~/.keras/kerasseg``);
3. a download into the cache (:func:`download`: a staging file, checked against the SHA-256,
   then renamed into place) from the mirror folder URL in ``$KERASSEG_ZOO_URL``
   (``<mirror>/<file>``) when it is set, else from the entry's URL (for releases hosted
   outside the package; ``null`` for the bundled entries).

Every file is checked against the registry's SHA-256 before use. An entry's ``.keras`` file
carries its preprocessing (see :mod:`kerasseg.modelfile`), so predictions on raw files need
no options: ``kerasseg predict --model NAME ...``.

An entry may instead be an ensemble of other entries: its record has
``"ensemble": ["entry-a", "entry-b"]`` (and optionally ``"ensemble_weights": [0.6, 0.4]``)
in place of its own file. It has no Keras model (:func:`load` refuses it); its members are
read with :func:`ensemble_members`, and :func:`kerasseg.ensemble.predictor` (or
:class:`kerasseg.ensemble.EnsemblePredictor`) predicts with it, as ``kerasseg predict
--model NAME`` does. (The zoo sits below inference in the package's layers, so the
predictor that averages the members lives in :mod:`kerasseg.ensemble`.)
"""

import hashlib
import json
import os
import urllib.error
import urllib.request

from kerasseg.files import atomic_path

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "registry.json")
#: The folder of the bundled entries' files (weights, cards, per-case metrics, golden outputs).
WEIGHTS = os.path.join(HERE, "weights")


def _registry_path():
    return os.environ.get("KERASSEG_ZOO_REGISTRY", REGISTRY)


def _entries():
    path = _registry_path()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"The zoo registry {path} cannot be read: {error}") from error
    return {entry["name"]: entry for entry in data.get("entries", [])}


def weights_dir():
    """Return the folder that holds the zoo entries' files.

    Returns:
        ``$KERASSEG_ZOO_DIR`` when it is set, else the bundled folder :data:`WEIGHTS`
        (``kerasseg/zoo/weights`` inside the installed package).

    Example:
        >>> from kerasseg import zoo
        >>> os.path.basename(zoo.weights_dir())  # doctest: +SKIP
        'weights'
    """
    return os.environ.get("KERASSEG_ZOO_DIR") or WEIGHTS


def cache_dir():
    """Return the local cache folder of zoo files (``$KERASSEG_CACHE`` or ``~/.keras/kerasseg``)."""
    return os.environ.get("KERASSEG_CACHE", os.path.join(os.path.expanduser("~"), ".keras", "kerasseg"))


def list_entries():
    """Return the names of the zoo entries, sorted.

    Returns:
        A list of strings such as ``["hippocampus-unet", ...]``.

    Example:
        >>> from kerasseg import zoo
        >>> names = zoo.list_entries()
    """
    return sorted(_entries())


def entry(name):
    """Return the registry record of one entry.

    Args:
        name: an entry name from :func:`list_entries`.

    Returns:
        The entry's dict (architecture, build config, file, sha256, url, metrics, ...).

    Raises:
        ValueError: for an unknown name; the message lists the entries.

    Example:
        >>> from kerasseg import zoo
        >>> zoo.entry("hippocampus-unet")["arch"]
        'unet'
    """
    entries = _entries()
    if name not in entries:
        raise ValueError(
            f"`name` must be one of the zoo entries {sorted(entries)}. Received: name={name!r}"
        )
    return entries[name]


def is_ensemble(name):
    """Return whether ``name`` is a zoo entry that is an ensemble of other entries.

    Args:
        name: any string; a name that is not a zoo entry is not an ensemble.

    Returns:
        ``True`` for an entry whose record has an ``"ensemble"`` list of member entries.

    Example:
        >>> from kerasseg import zoo
        >>> zoo.is_ensemble("hippocampus-unet"), zoo.is_ensemble("no-such-entry")
        (False, False)
    """
    record = _entries().get(name) if isinstance(name, str) else None
    return bool(record) and "ensemble" in record


def ensemble_members(name):
    """Return the member entries of an ensemble entry and their weights.

    Args:
        name: an ensemble entry's name (see :func:`is_ensemble`).

    Returns:
        ``(members, weights)``: the member entry names, and their weights as given in the
        record's ``"ensemble_weights"`` (``None`` when it has none: equal weights).

    Raises:
        ValueError: for an unknown name, an entry that is not an ensemble, or an invalid
            record (no members, an unknown member, a member that is itself an ensemble,
            weights that are not one positive number per member).

    Example:
        >>> from kerasseg import zoo
        >>> zoo.ensemble_members("hippocampus-2d-ensemble")  # doctest: +SKIP
        (['hippocampus-unet', 'hippocampus-fcn8s'], None)
    """
    record = entry(name)
    if "ensemble" not in record:
        raise ValueError(f"Zoo entry {name!r} is not an ensemble (its record has no "
                         "'ensemble' list of member entries).")
    members = record["ensemble"]
    if not isinstance(members, list) or not members or not all(
            isinstance(member, str) for member in members):
        raise ValueError(f"Zoo entry {name!r}: 'ensemble' must be a non-empty list of entry "
                         f"names. Received: {members!r}")
    entries = _entries()
    for member in members:
        if member not in entries:
            raise ValueError(f"Zoo ensemble {name!r} names {member!r}, which is not a zoo "
                             f"entry; the entries are {sorted(entries)}.")
        if "ensemble" in entries[member]:
            raise ValueError(f"Zoo ensemble {name!r} names {member!r}, which is an ensemble "
                             "itself; list that ensemble's members instead.")
    weights = record.get("ensemble_weights")
    if weights is not None:
        valid = isinstance(weights, list) and len(weights) == len(members) and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < float("inf")
            for w in weights)
        if not valid:
            raise ValueError(f"Zoo ensemble {name!r}: 'ensemble_weights' must be one positive "
                             f"number per member ({len(members)}). Received: {weights!r}")
        weights = [float(w) for w in weights]
    return list(members), weights


def _not_an_ensemble(name, record):
    if "ensemble" in record:
        raise ValueError(
            f"Zoo entry {name!r} is an ensemble of {record['ensemble']}, not one model: it has "
            "no file or Keras model of its own. Predict with it through "
            f"kerasseg.ensemble.EnsemblePredictor({name!r}) or "
            f"kerasseg.ensemble.predictor({name!r}) (what `kerasseg predict --model {name}` "
            "and `kerasseg evaluate` use).")


def sha256(path):
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path, record):
    actual = sha256(path)
    if actual != record["sha256"]:
        raise ValueError(
            f"{path}: SHA-256 {actual} does not match the zoo registry's {record['sha256']} "
            f"for {record['name']!r}; the file is corrupt or from another release. Delete it "
            "and fetch it again."
        )
    return path


def download(url, path, expected_sha256, timeout=60):
    """Download ``url`` to ``path`` through a staging file checked against a SHA-256.

    The bytes go to a hidden staging file beside ``path`` (``.<name>.<unique>.part``, see
    :func:`kerasseg.files.atomic_path`) while their SHA-256 is computed; only a complete
    file with the expected digest is renamed to ``path``, atomically, so ``path`` is never a
    partial or corrupt file, even when several processes download it at once. The staging
    file is removed on any failure.

    Args:
        url: the address; ``http(s)://``, or ``file://`` for a local mirror.
        path: the file to write; its folder is created if needed.
        expected_sha256: the SHA-256 hex digest the file must have.
        timeout: seconds to wait for the server.

    Returns:
        ``path``.

    Raises:
        ValueError: the downloaded bytes have another SHA-256 (nothing is written to ``path``).
        OSError: the URL cannot be read or ``path`` cannot be written.

    Example:
        >>> zoo.download("file:///mirror/hippocampus-unet.keras",  # doctest: +SKIP
        ...              "/tmp/cache/hippocampus-unet.keras", zoo.entry("hippocampus-unet")["sha256"])
        '/tmp/cache/hippocampus-unet.keras'
    """
    digest = hashlib.sha256()
    with atomic_path(path, ".part") as staging:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(staging, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        except (OSError, ValueError) as error:  # URLError is an OSError; a bad URL a ValueError
            raise OSError(f"Downloading {url} to {path} failed: {error}") from error
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ValueError(
                f"The file downloaded from {url} has SHA-256 {actual}, not the expected "
                f"{expected_sha256}; it is corrupt or from another release and was discarded."
            )
    return path


def fetch(name):
    """Return a local, hash-checked path of an entry's file, downloading it if needed.

    The file is looked up in :func:`weights_dir` (the bundled files, or
    ``$KERASSEG_ZOO_DIR``), then in :func:`cache_dir`; else it is downloaded into the cache
    (:func:`download`) from ``$KERASSEG_ZOO_URL/<file>`` or the entry's URL.

    Args:
        name: a zoo entry name.

    Returns:
        The file's path.

    Raises:
        ValueError: for an unknown name, a file whose SHA-256 differs from the registry,
            or an ensemble entry (it has no file; fetch its members).
        FileNotFoundError: if the file is in no folder and the entry has no URL.
        OSError: if the download fails.

    Example:
        >>> import os
        >>> from kerasseg import zoo
        >>> path = zoo.fetch("hippocampus-unet")  # the bundled file, checked
        >>> os.path.basename(path)
        'hippocampus-unet.keras'
    """
    record = entry(name)
    _not_an_ensemble(name, record)
    folders = [weights_dir(), cache_dir()]
    for folder in folders:
        path = os.path.join(folder, record["file"])
        if os.path.exists(path):
            return _checked(path, record)
    mirror = os.environ.get("KERASSEG_ZOO_URL")
    url = f"{mirror.rstrip('/')}/{record['file']}" if mirror else record.get("url")
    if not url:
        raise FileNotFoundError(
            f"The file {record['file']} of zoo entry {name!r} is not in {folders} and the "
            "entry has no download URL (set KERASSEG_ZOO_URL to a mirror folder that holds it)."
        )
    return download(url, os.path.join(cache_dir(), record["file"]), record["sha256"])


def load(name, return_info=False):
    """Load a zoo entry's trained model (with its preprocessing info).

    Args:
        name: a zoo entry name.
        return_info: also return the info stored with the model.

    Returns:
        The Keras model, or ``(model, info)``: ``info`` is the file's
        :class:`kerasseg.description.ModelInfo` with ``zoo_entry`` set to ``name``.

    Raises:
        ValueError: for an unknown name, a corrupt file, a model whose parameter count
            differs from the registry's (an incompatible release), or an ensemble entry
            (it is several models: the message points to
            :class:`kerasseg.ensemble.EnsemblePredictor`).
        FileNotFoundError: if the file cannot be found or downloaded.

    Example:
        >>> from kerasseg import zoo
        >>> model, info = zoo.load("hippocampus-unet", return_info=True)
        >>> info.class_names, model.input_shape
        (('background', 'Anterior', 'Posterior'), (None, None, None, 5))
    """
    from kerasseg.modelfile import load_model

    record = entry(name)
    _not_an_ensemble(name, record)
    model, info = load_model(fetch(name))
    if "params" in record and model.count_params() != record["params"]:
        raise ValueError(
            f"Zoo entry {name!r}: the model has {model.count_params()} parameters, the "
            f"registry says {record['params']}; the file and registry do not match."
        )
    if info is None:
        raise ValueError(f"Zoo entry {name!r}: the file holds no kerasseg model info.")
    info = info.replace(zoo_entry=name)
    return (model, info) if return_info else model


def build_from_zoo(name, arch, input_shape, num_classes, **options):
    """Build ``arch`` with a zoo entry's weights (what ``kerasseg.build(..., weights=NAME)`` does).

    Args:
        name: a zoo entry name.
        arch: the model family asked for; it must be the entry's.
        input_shape: the input shape asked for; its channel count must be the entry's.
        num_classes: the classes asked for; they must be the entry's (to start from an
            entry with other classes, use ``kerasseg train --init-weights NAME``).
        **options: family options; any given must equal the entry's.

    Returns:
        The entry's model (input height and width as trained: any multiple of the stride).

    Raises:
        ValueError: if the request is incompatible with the entry (named in the message).

    Example:
        >>> model = kerasseg.build("unet", weights="hippocampus-unet", num_classes=3,
        ...                        input_shape=(None, None, 5))  # 2.5-D: 5 slices as channels
        >>> model.output_shape
        (None, None, None, 3)
    """
    record = entry(name)
    model, info = load(name, return_info=True)
    problems = []
    if record["arch"] != arch:
        problems.append(f"architecture {record['arch']!r}, not {arch!r}")
    if int(input_shape[-1]) != int(model.input_shape[-1]):
        problems.append(f"{model.input_shape[-1]} input channel(s), not {input_shape[-1]}")
    if int(num_classes) != int(model.output_shape[-1]):
        problems.append(f"{model.output_shape[-1]} classes, not {num_classes}")
    for key, value in options.items():
        if info.model_options.get(key, value) != value:
            problems.append(f"{key}={info.model_options[key]!r}, not {value!r}")
    if problems:
        raise ValueError(
            f"Zoo entry {name!r} is incompatible with the request: it has "
            + "; ".join(problems) + ". Use `kerasseg train --init-weights` to adapt it."
        )
    return model


def format_table():
    """Return a text table of the entries: size, held-out cases and measured Dice.

    Returns:
        One header line and one line per entry (mean foreground Dice without and with
        flip TTA, then each class's Dice); an ensemble entry's model reads ``ensemble``.

    Example:
        >>> print(zoo.format_table())  # doctest: +SKIP
    """
    entries = _entries()
    if not entries:
        return "The zoo has no entries in this release."
    lines = [f"{'name':22s} {'arch':8s} {'params':>7s} {'size':>7s} {'held-out':>8s} "
             f"{'Dice':>6s} {'TTA':>6s}  per class"]

    def number(value):
        return f"{value:6.3f}" if isinstance(value, (int, float)) else f"{'-':>6s}"

    for name in sorted(entries):
        record = entries[name]
        metrics, tta = record.get("metrics") or {}, record.get("metrics_tta") or {}
        classes = ", ".join(f"{key[5:]} {value:.3f}" for key, value in metrics.items()
                            if key.startswith("dice_"))
        params = f"{record['params'] / 1e6:6.2f}M" if "params" in record else f"{'-':>7s}"
        held_out = len(record.get("split", {}).get("test", []))
        arch = record.get("arch") or ("ensemble" if "ensemble" in record else "-")
        lines.append(f"{name:22s} {arch:8s} {params} {record.get('size', 0) / 1e6:6.2f}M "
                     f"{held_out:8d} {number(metrics.get('mean_dice'))} "
                     f"{number(tta.get('mean_dice'))}  {classes}")
    return "\n".join(lines)


def card(name):
    """Return an entry's model card (Markdown), or its registry record if it has no card.

    The card is looked up in :func:`weights_dir`, then in the bundled folder.

    Args:
        name: a zoo entry name.

    Returns:
        The card's Markdown text, or the registry record as indented JSON.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> from kerasseg import zoo
        >>> print(zoo.card("hippocampus-unet"))
        # hippocampus-unet
        ...
    """
    record = entry(name)
    for folder in dict.fromkeys([weights_dir(), WEIGHTS]):
        path = os.path.join(folder, record.get("card", f"{name}.md"))
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    return json.dumps(record, indent=2)
