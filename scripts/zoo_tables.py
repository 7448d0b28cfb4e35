"""The zoo's numbers and tables shared by scripts/build_zoo.py and scripts/zoo_ensemble.py:
an evaluation's summary and per-case rows as the registry stores them, and the README's zoo
table written from the registry."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
ZOO = ROOT / "kerasseg" / "zoo" / "weights"
README = ROOT / "README.md"
TABLE_START = "<!-- zoo table: written by scripts/build_zoo.py readme -->"
TABLE_END = "<!-- end of zoo table -->"


def summary_metrics(evaluation, class_names):
    summary = {"mean_dice": round(evaluation["mean_foreground_dice"], 4)}
    for name in class_names[1:]:
        stats = evaluation["summary"][name]
        summary[f"dice_{name}"] = round(stats["dice"]["mean"], 4)
        summary[f"hd95_{name}"] = round(stats["hd95"]["mean"], 3)
    return summary


def per_case_metrics(evaluation, class_names):
    return {row["case_id"]: {name: {"dice": round(row["metrics"][name]["dice"], 5),
                                    "hd95": round(row["metrics"][name]["hd95"], 4)}
                             for name in class_names[1:]}
            for row in evaluation["cases"]}


def metric_line(metrics, class_names):
    return ", ".join(f"{n} Dice {metrics[f'dice_{n}']:.3f} / HD95 {metrics[f'hd95_{n}']:.2f}"
                     for n in class_names[1:])


def tta_dice(record):
    tta = record.get("metrics_tta")
    if tta:
        return f"{tta['mean_dice']:.3f}"
    return "n/a (members trained without flips)" if "ensemble" in record else \
        "n/a (trained without flips)"


def readme():
    """Rewrite the README's zoo table from the registry."""
    from kerasseg import zoo

    rows = ["| entry | model | params | file | held-out cases | mean Dice | with flip TTA | "
            "per class (Dice / HD95) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in zoo.list_entries():
        record = zoo.entry(name)
        rows.append(
            f"| [{name}]({ZOO.relative_to(ROOT).as_posix()}/{record['card']}) | {record['arch']} | {record['params'] / 1e6:.2f} M | "
            f"{record['size'] / 1e6:.1f} MB | {len(record['split']['test'])} | "
            f"{record['metrics']['mean_dice']:.3f} | {tta_dice(record)} | "
            f"{metric_line(record['metrics'], record['class_names'])} |")
    text = README.read_text()
    if TABLE_START not in text:
        raise SystemExit(f"{README} has no zoo table marker {TABLE_START!r}")
    head, rest = text.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    from kerasseg.files import write_text_atomic

    write_text_atomic(README, head + TABLE_START + "\n" + "\n".join(rows) + "\n" + TABLE_END + tail)


def register(record):
    """Put ``record`` into the registry (replacing the entry of its name), then rewrite the
    README's zoo table."""
    from kerasseg import zoo
    from kerasseg.files import read_json, write_json_atomic

    registry = read_json(zoo.REGISTRY) or {"version": 1, "entries": []}
    entries = [e for e in registry["entries"] if e["name"] != record["name"]] + [record]
    registry["entries"] = sorted(entries, key=lambda e: e["name"])
    write_json_atomic(zoo.REGISTRY, registry)
    readme()
