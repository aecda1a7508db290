"""The tiny design plus two variants of race_black, `race_black_oversampled` and
`race_black_cropped` (a 6 mm crop margin), materialised once per test session in a fresh
interpreter started with CMRBIAS_STUDY_FILE naming it (partitions follow the study file the code
location loads, as for `make ui`): manifest and test sets, then at 25 % black the baseline's
split, dataset, plans and fold 0 (trained first, so a variant could only skip training by
adopting it), the same for each variant, and the cropped variant's ensemble over fold 0."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource
from cmrbias_dagster.resources.study import PROJECT_ROOT

BASELINE, OVERSAMPLED, CROPPED = (
    "race_black|25",
    "race_black_oversampled|25",
    "race_black_cropped|25",
)
CROP_MARGIN_MM = 6.0
VARIANTS = {
    "race_black_oversampled": {"mitigation": "oversampling", "varies": "race_black"},
    "race_black_cropped": {
        "mitigation": {"strategy": "cropping", "crop_margin_mm": CROP_MARGIN_MM},
        "varies": "race_black",
    },
}

MATERIALIZE = """
import json, sys
from pathlib import Path
import dagster as dg
from cmrbias_dagster.assets import cohort, nnunet, splits
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.training import fold_checkpoints
from cmrbias_dagster.resources import build_resources

study_file, root, work = (Path(arg) for arg in sys.argv[1:4])
assets = [*dg.load_assets_from_modules([cohort, splits, nnunet]), *fold_checkpoints(1)]
assets += evaluation_assets(1)[:1]
resources = build_resources(
    profile="tiny", work_dir=work, cohort_root=root, study_file=study_file, device="cpu"
)
instance = dg.DagsterInstance.ephemeral()
runs = [(["subject_manifest", "rejected_subjects"], None)]
runs += [(["test_set"], key.split("|")[0]) for key in sys.argv[4:]]
stages = ["training_split", "cv_folds", "nnunet_dataset", "nnunet_plans", "fold_0_checkpoint"]
runs += [(stages, key) for key in sys.argv[4:-1]]
runs += [([*stages, "ensemble_prediction"], sys.argv[-1])]
metadata = {}
for selection, key in runs:
    result = dg.materialize(
        assets, selection=selection, partition_key=key, resources=resources, instance=instance
    )
    for node in ("nnunet_dataset", "nnunet_plans", "fold_0_checkpoint", "ensemble_prediction"):
        if node in selection:
            event = result.asset_materializations_for_node(node)[0]
            metadata[f"{key} {node}"] = {
                **{name: value.value for name, value in event.metadata.items()
                   if isinstance(value.value, (str, int, float, bool, list, dict, type(None)))},
                "data_version": event.tags.get("dagster/data_version"),
            }
print(json.dumps(metadata))
"""


class VariantDesign(NamedTuple):
    study: StudyResource
    work: Path
    metadata: dict  # "<partition> <asset>" -> the materialisation's metadata and data version


def run_variant_design(cohort: Path, tmp: Path) -> VariantDesign:
    """Write the design to `tmp`, materialise it (see the module) and return what it made."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["experiments"] |= {
        name: {**design["experiments"]["race_black"], **fields} for name, fields in VARIANTS.items()
    }
    study_file = tmp / "study.yaml"
    study_file.write_text(yaml.safe_dump(design, sort_keys=False))
    keys = [BASELINE, OVERSAMPLED, CROPPED]  # the baseline first; the ensemble of the last
    run = subprocess.run(
        [sys.executable, "-c", MATERIALIZE, str(study_file), str(cohort), str(tmp / "work"), *keys],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CMRBIAS_STUDY_FILE": str(study_file)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    study = StudyResource(study_file=str(study_file), profile="tiny", work_dir=str(tmp / "work"))
    return VariantDesign(study, tmp / "work", json.loads(run.stdout.splitlines()[-1]))
