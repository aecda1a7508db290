"""Do the planted group effects survive nnU-Net? Train on white subjects only, test on all races.

The quick-profile cohort grid and schedule, one fold: trains on `--train` white subjects (half
female), predicts `--test` subjects of each race, and prints each race's median DSC and the gap to
white. Knobs override the defaults: --effect black.trabeculation=0.8 (repeatable); profile
blocks too: --set training.epochs=8 --set nnunet.features_per_stage=[8,16,32,64] (YAML values).
One fold is noisy (repeats differ by 2-3 DSC points); --repeats N trains N folds, each validating
on another fifth of the training cases, and also prints the median of each gap over the folds.
Run: python -m bench.effect_probe [--effect RACE.KNOB=VALUE ...] [--set BLOCK.KEY=VALUE ...]
On a CUDA machine add --device cuda (same schedule; bench/device/run_effect_probes.sh runs many).
"""

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from bench.throughput_data import write_subject
from cmrbias_dagster.lib.cohort.synthetic import CohortSpec
from cmrbias_dagster.lib.cohort.synthetic.demographics import sample_group
from cmrbias_dagster.lib.design.settings import PlanEdits, TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.convergence import fold_verdict
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet.fold_records import trainer_folder
from cmrbias_dagster.lib.nnunet.inference import predict_ensemble
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plans import plan_and_preprocess
from cmrbias_dagster.lib.nnunet.training import train_fold

DATASET_ID, DATASET = 902, "Dataset902_effect_probe"


def rows_for(races: tuple[str, ...], per_sex: int, seed: int, start: int) -> list[dict]:
    """Demographics of `per_sex` women and men of each race, ids from SYN<start>."""
    rng, rows = np.random.default_rng([seed, start]), []
    for race in races:
        for sex in ("female", "male"):
            values = sample_group(race, sex, per_sex, rng)
            for i in range(per_sex):
                number = start + len(rows)
                row = {k: float(v[i]) for k, v in values.items()}
                rows.append({"subject_id": f"SYN{number:05d}", "sex": sex, "race": race, **row})
    return rows


def validation_rotations(ids: list[str], repeats: int) -> list[dict[str, list[str]]]:
    """One 80/20 split per repeat, each validating on another fifth of the cases."""
    fifth = len(ids) // 5
    starts = [i * fifth for i in range(repeats)]
    return [
        {"train": ids[:start] + ids[start + fifth :], "val": ids[start : start + fifth]}
        for start in starts
    ]


def report_fold(fold: int, predictions: list, test_rows: list[dict]) -> dict[str, float]:
    """Print one fold's median DSC per race and sex; return its gaps (race - white, women - men)."""
    by_group: dict[str, list[float]] = {}
    attribute_of = {r["subject_id"]: (r["race"], r["sex"]) for r in test_rows}
    for p in predictions:
        for group in attribute_of[p.case_id.rsplit("_", 1)[0]]:
            by_group.setdefault(group, []).append(p.ensemble_mean_dice)
    median = {group: statistics.median(dice) for group, dice in by_group.items()}
    for group, dice in by_group.items():
        print(f"fold {fold}: {group:6s} median DSC {median[group]:.4f}  (n={len(dice)} cases)")
    gaps = {f"{race} - white": median[race] - median["white"] for race in ("black", "asian")}
    return {**gaps, "female - male": median["female"] - median["male"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--effect", action="append", default=[], help="RACE.KNOB=VALUE")
    parser.add_argument("--set", action="append", default=[], help="BLOCK.KEY=YAML_VALUE")
    parser.add_argument("--train-sex", choices=("female", "male"), help="train on one sex only")
    parser.add_argument("--train-race", default="white", choices=("white", "black", "asian"))
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1, choices=range(1, 6))
    parser.add_argument("--device", default="cpu", help="torch device for training and inference")
    args = parser.parse_args()
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    quick = design.profile("quick")
    overrides: dict[str, dict[str, float]] = {}
    for item in args.effect:
        target, value = item.split("=")
        race, knob = target.split(".")
        overrides.setdefault(race, {})[knob] = float(value)
    blocks = {
        "training": asdict(quick.training),
        "nnunet": asdict(quick.nnunet),
        "synthetic_cohort": quick.synthetic_cohort.as_mapping(),
    }
    for item in args.set:
        target, value = item.split("=", 1)
        block, key = target.split(".")
        blocks[block][key] = yaml.safe_load(value)
    spec = CohortSpec.from_mapping(
        {**blocks["synthetic_cohort"], "effects": overrides}, design.seed
    )
    train_rows = rows_for((args.train_race,), args.train // 2, design.seed, 1)
    if args.train_sex:
        both = rows_for((args.train_race,), args.train, design.seed, 1)
        train_rows = [r for r in both if r["sex"] == args.train_sex]
    test_rows = rows_for(("white", "black", "asian"), args.test // 2, design.seed, 50001)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = NnunetEnvironment(root / "raw", root / "preprocessed", root / "results")
        (root / "cases").mkdir()
        train = [c for r in train_rows for c in write_subject(r, spec, root / "cases")]
        test = [c for r in test_rows for c in write_subject(r, spec, root / "cases")]
        write_raw_dataset(train, DATASET, env)
        ids = sorted({c.case_id for c in train})
        splits = validation_rotations(ids, args.repeats)
        edits = PlanEdits.from_mapping(blocks["nnunet"])
        run_in_fresh_process(plan_and_preprocess, DATASET_ID, env, edits, splits)
        settings = TrainingSettings.from_mapping({**blocks["training"], "final_validation": False})
        training_started = time.monotonic()
        trained = [
            run_in_fresh_process(train_fold, env, DATASET, fold, settings, args.device)
            for fold in range(args.repeats)
        ]
        training_seconds = time.monotonic() - training_started
        per_fold = [
            run_in_fresh_process(
                predict_ensemble,
                env,
                DATASET,
                (fold,),
                test,
                root / f"predictions_{fold}",
                quick.prediction,
                args.device,
                trainer_folder(settings),
            )
            for fold in range(args.repeats)
        ]
    print(f"effects: {spec.effects}")
    for result in trained:
        verdict = fold_verdict(result, quick.convergence)
        print(f"fold {result.fold} ({result.precision}): {verdict.reason}")
    gaps = [report_fold(fold, predictions, test_rows) for fold, predictions in enumerate(per_fold)]
    for name in gaps[0]:
        values = ", ".join(f"{g[name]:+.4f}" for g in gaps)
        median = statistics.median(g[name] for g in gaps)
        print(f"gap {name}: median over {args.repeats} fold(s) {median:+.4f}  (folds: {values})")
    sexes = args.train_sex or "both sexes"
    print(f"trained on {len(train_rows)} {args.train_race} subjects ({sexes})")
    print(f"settings: {blocks}")
    total = time.monotonic() - started
    print(f"training took {training_seconds:.0f} s; the whole probe {total:.0f} s")


if __name__ == "__main__":
    main()
