"""Do the planted group effects survive nnU-Net? Train on white subjects only, test on all races.

The quick-profile cohort grid and schedule, one fold: trains on `--train` white subjects (half
female), predicts `--test` subjects of each race, and prints each race's median DSC and the gap to
white. Knobs override the defaults: --effect black.trabeculation=0.8 (repeatable).
Run: python -m bench.effect_probe [--effect RACE.KNOB=VALUE ...]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.train_throughput import write_subject
from cmrbias_dagster.lib.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet_dataset import NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet_inference import PredictionSettings, predict_ensemble
from cmrbias_dagster.lib.nnunet_plan_edits import PlanEdits
from cmrbias_dagster.lib.nnunet_plans import plan_and_preprocess
from cmrbias_dagster.lib.nnunet_training import train_fold
from cmrbias_dagster.lib.study_design import load_study_design
from cmrbias_dagster.lib.synthetic import CohortSpec
from cmrbias_dagster.lib.synthetic.demographics import sample_group
from cmrbias_dagster.lib.training_settings import TrainingSettings

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--effect", action="append", default=[], help="RACE.KNOB=VALUE")
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=12)
    args = parser.parse_args()
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    quick = design.profile("quick")
    overrides: dict[str, dict[str, float]] = {}
    for item in args.effect:
        target, value = item.split("=")
        race, knob = target.split(".")
        overrides.setdefault(race, {})[knob] = float(value)
    spec = CohortSpec.from_mapping({**quick.synthetic_cohort, "effects": overrides}, design.seed)
    train_rows = rows_for(("white",), args.train // 2, design.seed, 1)
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
        splits = [{"train": ids[len(ids) // 5 :], "val": ids[: len(ids) // 5]}]
        edits = PlanEdits.from_mapping(quick.nnunet)
        run_in_fresh_process(plan_and_preprocess, DATASET_ID, env, edits, splits)
        settings = TrainingSettings.from_mapping({**quick.training, "final_validation": False})
        run_in_fresh_process(train_fold, env, DATASET, 0, settings, "cpu")
        predictions = run_in_fresh_process(
            predict_ensemble,
            env,
            DATASET,
            (0,),
            test,
            root / "predictions",
            PredictionSettings.from_mapping(quick.prediction),
            "cpu",
        )
    race_of = {r["subject_id"]: r["race"] for r in test_rows}
    by_race: dict[str, list[float]] = {}
    for p in predictions:
        by_race.setdefault(race_of[p.case_id.rsplit("_", 1)[0]], []).append(p.ensemble_mean_dice)
    white = statistics.median(by_race["white"])
    print(f"effects: {spec.effects}")
    for race, dice in by_race.items():
        print(
            f"{race:6s} median DSC {statistics.median(dice):.4f}  gap to white "
            f"{statistics.median(dice) - white:+.4f}  (n={len(dice)} cases)"
        )
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
