"""Incremental retraining: after adding subjects to a cohort, how many of the 15 partitions retrain.

Drives the real automation conditions (cohort_sensor, then training_sensor;
cmrbias_dagster/automation/conditions.py) on a synthetic cohort of a profile, in an in-memory
Dagster instance, evaluated tick by tick (`dg.evaluate_automation_conditions`) as the daemon would:
  1. raw_cohort is observed and the cohort sensor's conditions build the manifest, test sets and
     every split; every partition is then recorded as trained (each training asset after its split);
  2. `--new` subjects are written into the cohort folder (race and sex drawn with `--seed`);
  3. raw_cohort is observed again, the cohort sensor refreshes manifest, test sets and splits, and
     the training sensor's conditions request the partitions to retrain. Without them every
     partition would retrain (the baseline, 15).
Run: python -m bench.incremental [--profile quick] [--new 10] [--seeds 0 1 2]
     python -m bench.incremental --stratum asian/female   (all newcomers of one race and sex)
     python -m bench.incremental --profile paper --matrix 48 --pixel-mm 5   (the paper's counts)
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import nibabel as nib
import numpy as np

from cmrbias_dagster.automation import cohort_sensor, training_sensor
from cmrbias_dagster.automation.in_process import (
    AutomationReplay,
    observe_cohort,
    training_split_members,
)
from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.lib.cohort.synthetic import (
    DEMOGRAPHIC_COLUMNS,
    PHASES,
    CohortSpec,
    generate_subject,
    write_cohort,
)
from cmrbias_dagster.lib.cohort.synthetic.demographics import sample_group
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, build_resources

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
STRATA = [(race, sex) for race in ("white", "black", "asian") for sex in ("female", "male")]


def mark_trained(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Stand in for partition_job runs: each partition's training assets, in dependency order."""
    graph = defs.resolve_asset_graph()
    trained = training_sensor.asset_selection.resolve(graph)
    for partition in study_partitions.get_partition_keys():
        for key in (key for key in graph.toposorted_asset_keys if key in trained):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def add_subjects(
    root: Path, spec: CohortSpec, count: int, seed: int, stratum: tuple[str, str] | None
) -> list[str]:
    """Write `count` new synthetic subjects of `stratum` (race, sex), or of strata drawn
    uniformly; returns their strata."""
    rng = np.random.default_rng([seed, 10])
    first = sum(1 for path in root.iterdir() if path.is_dir()) + 1
    strata = []
    for index in range(count):
        race, sex = stratum or STRATA[rng.integers(len(STRATA))]
        measures = {name: float(v[0]) for name, v in sample_group(race, sex, 1, rng).items()}
        row = {"subject_id": f"SYN{first + index:05d}", "sex": sex, "race": race, **measures}
        subject = generate_subject(row, spec)
        (root / row["subject_id"]).mkdir()
        for phase in PHASES:
            for prefix, arrays in (("sa", subject.images), ("label_sa", subject.labels)):
                image = nib.Nifti1Image(arrays[phase], subject.affine)
                nib.save(image, root / row["subject_id"] / f"{prefix}_{phase}.nii.gz")
        with (root / "demographics.csv").open("a") as table:
            table.write(",".join(str(row[column]) for column in DEMOGRAPHIC_COLUMNS) + "\n")
        strata.append(f"{race}/{sex}")
    return strata


def measure(args: argparse.Namespace, seed: int, folder: Path) -> dict[str, object]:
    profile, design = args.profile, load_study_design(DEFAULT_STUDY_FILE)
    images = {"matrix": args.matrix, "pixel_mm": args.pixel_mm}
    cohort = design.profile(profile).synthetic_cohort.as_mapping()
    cohort.update({key: value for key, value in images.items() if value is not None})
    spec = CohortSpec.from_mapping(cohort, seed=design.seed)
    folds = design.profile(profile).trained_folds
    root = write_cohort(spec, folder / "cohort", workers=2)
    resources = build_resources(profile=profile, work_dir=folder / "work", cohort_root=root)
    defs, instance = build_definitions(resources, folds), dg.DagsterInstance.ephemeral()
    cohort = AutomationReplay(defs, instance, cohort_sensor, run_config=QUIET)
    training = AutomationReplay(defs, instance, training_sensor)
    cohort.tick(), training.tick()  # the daemon's first ticks, before the cohort is observed
    observe_cohort(defs, instance)
    cohort.until_quiet()
    training.tick()  # requests every new split; stood in for by:
    mark_trained(defs, instance)
    training.tick()  # the sensor ticks each minute; training takes longer than that
    database = folder / "work" / f"cmrbias_{profile}.duckdb"
    before = training_split_members(database)

    stratum = tuple(args.stratum.split("/")) if args.stratum else None
    strata = add_subjects(root, spec, args.new, seed, stratum)
    started = time.monotonic()
    observe_cohort(defs, instance)
    waves = cohort.until_quiet()
    retrain = training.tick()
    after = training_split_members(database)
    return {
        "newcomers": strata,
        # per tick, the asset partitions requested: cohort assets, test sets, splits and folds
        "refresh_waves": [sum(map(len, wave.values())) for wave in waves],
        "refresh_seconds": round(time.monotonic() - started, 1),
        "splits_changed": sorted(key for key in before if before[key] != after[key]),
        "retrain": sorted(retrain.get("nnunet_dataset", set())),
        "partitions": len(study_partitions.get_partition_keys()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--stratum", help="all newcomers of one race/sex, e.g. asian/female")
    parser.add_argument("--matrix", type=int, help="smaller images, same counts (e.g. paper: 48)")
    parser.add_argument("--pixel-mm", type=float, help="with --matrix: keep the field of view")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Dagster's beta and deprecation notices, once per run
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="cmrbias-incremental-") as folder:
            figures = measure(args, seed, Path(folder))
        retrain, total = len(figures["retrain"]), figures["partitions"]
        print(f"[incremental] profile {args.profile}, seed {seed}: {args.new} new subjects")
        print(f"  newcomers: {', '.join(figures['newcomers'])}")
        print(
            f"  cohort refresh: waves {figures['refresh_waves']} in {figures['refresh_seconds']} s"
        )
        print(f"  splits whose membership changed: {len(figures['splits_changed'])}")
        print(f"  partitions to retrain: {retrain} of {total} (ratio {retrain / total:.2f})")
        print(f"  retrained: {', '.join(figures['retrain']) or 'none'}")
        if figures["retrain"] != figures["splits_changed"]:
            print("  NOTE: retrained partitions differ from the splits that changed")


if __name__ == "__main__":
    main()
