"""Packaging a zoo entry that is an ensemble of other entries.

``python scripts/build_zoo.py package NAME`` for a name in ``zoo_recipes.ENSEMBLES``: the
candidates (zoo entries that share one split) are ranked by
:func:`kerasseg.scoring.rank_ensembles` on their model-selection cases, exactly as
``kerasseg choose-ensemble`` does; the best combination is scored once on the held-out
cases, and its registry record (``"ensemble": [members]``), per-case metrics and card are
written. It has no file of its own: the members' files are the zoo's.
"""

import datetime
import os

from zoo_tables import ZOO, metric_line, per_case_metrics, register, summary_metrics
from zoo_recipes import ENSEMBLES


def selection_command(name, data_root="../shared/data"):
    """The ``kerasseg choose-ensemble`` command that ranks entry ``name``'s candidates."""
    recipe = ENSEMBLES[name]
    models = " ".join(f"--model {candidate}" for candidate in recipe["candidates"])
    return f"kerasseg choose-ensemble {models} --data {data_root}/{recipe['data']}"


def package_ensemble(name, data_root):
    """Choose, evaluate and register the ensemble entry ``name``."""
    from kerasseg import zoo
    from kerasseg.data import load_dataset
    from kerasseg.files import write_json_atomic, write_text_atomic
    from kerasseg.scoring import evaluate_model, rank_ensembles

    recipe = ENSEMBLES[name]
    records = [zoo.entry(candidate) for candidate in recipe["candidates"]]
    split = records[0]["split"]
    for record in records[1:]:
        if record["split"] != split:
            raise SystemExit(f"{name}: {record['name']} was trained on another split than "
                             f"{records[0]['name']}; an ensemble's candidates share one")
    class_names = records[0]["class_names"]
    dataset = load_dataset(os.path.join(data_root, recipe["data"]), class_names=class_names)
    ranking = rank_ensembles(recipe["candidates"], dataset.subset(split["val"]))
    members = ranking["ranking"][0]["members"]
    print(f"{name}: chose {members} on {len(split['val'])} model-selection cases")
    evaluation = evaluate_model(members, dataset.subset(split["test"]))
    chosen = [zoo.entry(member) for member in members]
    record = {
        "name": name,
        "arch": "ensemble",
        "ensemble": members,
        "summary": recipe["summary"],
        "limits": recipe["limits"],
        "card": f"{name}.md",
        "params": sum(member["params"] for member in chosen),
        "size": sum(member["size"] for member in chosen),
        "class_names": class_names,
        "training": {
            "command": selection_command(name),
            "data": recipe["dataset"],
            "data_folder": recipe["data"],
            "licence": recipe["licence"],
            "citation": recipe["citation"],
            "date": datetime.date.today().isoformat(),
        },
        "selection": [{"members": entry["members"],
                       "mean_dice": round(entry["mean_foreground_dice"], 4)}
                      for entry in ranking["ranking"]],
        "split": split,
        "metrics": summary_metrics(evaluation, class_names),
        "metrics_tta": None,
    }
    cases = {"no_tta": per_case_metrics(evaluation, class_names),
             # Each combination's mean foreground Dice per model-selection case.
             "selection": {" + ".join(entry["members"]): {
                 case_id: round(value, 5)
                 for case_id, value in zip(ranking["case_ids"], entry["per_case"])}
                 for entry in ranking["ranking"]}}
    write_json_atomic(ZOO / f"{name}.metrics.json", cases)
    write_text_atomic(ZOO / record["card"], card(record, cases))
    register(record)
    print(f"{name}: {record['metrics']}")


def card(record, cases):
    """Return the Markdown card of an ensemble entry and its per-case metrics."""
    names = record["class_names"]
    members = record["ensemble"]
    split = record["split"]
    lines = [
        f"# {record['name']}", "", record["summary"], "",
        "## Use", "", "```bash",
        f"kerasseg predict --model {record['name']} --input IMAGES/ --output PREDICTIONS/",
        "```", "",
        "```python",
        "from kerasseg.ensemble import predictor",
        f"ensemble = predictor({record['name']!r})",
        "label = ensemble.predict_case(case)",
        "```", "",
        "Each member predicts with its own preprocessing and its probabilities are taken back "
        "to the input's grid; the label is the argmax of their mean (equal weights).", "",
        "## Members", "",
    ]
    lines += [f"- [{member}]({member}.md)" for member in members]
    lines += [
        "", f"{record['params']:,} parameters and {record['size'] / 1e6:.2f} MB in all.", "",
        "## Choice of the members", "",
        f"Every equal-weight combination of the candidates was scored on the "
        f"{len(split['val'])} model-selection cases that the candidates share (none of them "
        "trained on these), by mean foreground Dice per case in 3-D; the best combination "
        "was then scored once on the held-out cases. Command (from the repository root, "
        "data beside it):", "",
        "```bash", record["training"]["command"], "```", "",
        "| rank | model-selection mean Dice | members |", "| ---: | ---: | --- |",
    ]
    lines += [f"| {rank} | {entry['mean_dice']:.4f} | {' + '.join(entry['members'])} |"
              for rank, entry in enumerate(record["selection"], 1)]
    metrics = record["metrics"]
    lines += [
        "", "## Measured accuracy", "",
        f"On the {len(split['test'])} held-out cases, never used for training or model "
        f"selection, per case in 3-D at the original grid; HD95 in mm: mean foreground Dice "
        f"{metrics['mean_dice']:.3f}; {metric_line(metrics, names)}.", "",
        "| case | " + " | ".join(f"{n} Dice | {n} HD95" for n in names[1:]) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in names[1:]) + " |",
    ]
    for case_id, values in sorted(cases["no_tta"].items()):
        lines.append(f"| {case_id} | " + " | ".join(
            f"{values[n]['dice']:.4f} | {values[n]['hd95']:.2f}" for n in names[1:]) + " |")
    lines += ["", "## Data", "", f"- data: {record['training']['data']}",
              f"- licence: {record['training']['licence']}",
              f"- cite: {record['training']['citation']}", "",
              "## Limits", "", record["limits"], ""]
    return "\n".join(lines)
