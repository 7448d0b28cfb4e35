"""Write the hippocampus MRI sample bundled with kerasseg (``kerasseg/sample/hippocampus``).

The sample is every fourth case (by case id) of the Medical Segmentation Decathlon Task04
(Hippocampus) training set, copied unchanged in the Decathlon layout with a
``dataset.json`` listing them, and the licence and attribution the data requires.

Usage: python scripts/make_sample.py ../shared/data/msd_hippocampus
"""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "..", "kerasseg", "sample", "hippocampus")
EVERY = 4

ATTRIBUTION = """# Hippocampus MRI sample (Medical Segmentation Decathlon, Task04)

{count} training cases of the Medical Segmentation Decathlon's hippocampus task (every
{every}th case by id of kerasseg's development copy of the training set), unchanged:
mono-modal T1 MRI crops around the hippocampus, 1 mm isotropic, with expert labels
0 background, 1 anterior (head), 2 posterior (body and tail). Data: Vanderbilt University Medical Center.

Licence: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0),
https://creativecommons.org/licenses/by-sa/4.0/. These files, and any copy or adaptation
of them, are under that licence; the rest of kerasseg is not affected by it.

If you use them, cite:

- A. L. Simpson et al., "A large annotated medical image dataset for the development and
  evaluation of segmentation algorithms", arXiv:1902.09063, 2019.
- M. Antonelli et al., "The Medical Segmentation Decathlon", Nature Communications 13,
  4128, 2022.
"""


def main(source):
    with open(os.path.join(source, "dataset.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    entries = sorted(meta["training"], key=lambda e: e["image"])[::EVERY]
    if os.path.exists(TARGET):
        shutil.rmtree(TARGET)
    for sub in ("imagesTr", "labelsTr"):
        os.makedirs(os.path.join(TARGET, sub))
    for entry in entries:
        for key in ("image", "label"):
            rel = entry[key].lstrip("./")
            shutil.copyfile(os.path.join(source, rel), os.path.join(TARGET, rel))
    meta = dict(meta)
    meta["description"] = (
        f"kerasseg sample: every {EVERY}th training case of the Decathlon hippocampus task"
    )
    meta["training"] = entries
    meta["numTraining"] = len(entries)
    meta["test"] = []
    meta["numTest"] = 0
    with open(os.path.join(TARGET, "dataset.json"), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
    with open(os.path.join(TARGET, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(ATTRIBUTION.format(count=len(entries), every=EVERY))
    print(f"wrote {len(entries)} cases to {os.path.normpath(TARGET)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "msd_hippocampus"))
