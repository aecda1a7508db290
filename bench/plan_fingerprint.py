"""Fingerprint cost: nnU-Net's stock extractor (1e8 intensity samples) vs the pipeline's (1e6).

Builds a quick-profile-sized raw dataset (32 synthetic subjects = 64 cases at 64x64x8), runs both
extractors on it in this run, and checks that the 2d plans made from each are identical.
Run: python bench/plan_fingerprint.py [--subjects-per-group 8]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.throughput_data import balanced_rows, write_subject
from cmrbias_dagster.lib.cohort.synthetic import CohortSpec
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet.plans import MR_INTENSITY_SAMPLES

DATASET_ID, DATASET = 901, "Dataset901_fingerprint"


def timed_plan(samples: float) -> tuple[float, dict]:
    """Seconds for integrity check + fingerprint with `samples` intensities, and the 2d plan."""
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiments,
    )

    class Extractor(DatasetFingerprintExtractor):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.num_foreground_voxels_for_intensitystats = samples

    started = time.monotonic()
    extract_fingerprint_dataset(DATASET_ID, Extractor, 2, True, True, False, False)
    seconds = time.monotonic() - started
    plans_id = plan_experiments([DATASET_ID])
    plans_file = Path(os.environ["nnUNet_preprocessed"], DATASET, f"{plans_id}.json")
    return seconds, json.loads(plans_file.read_text())["configurations"]["2d"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects-per-group", type=int, default=8)
    args = parser.parse_args()
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    spec = CohortSpec.from_mapping(design.profile("quick").synthetic_cohort, seed=design.seed)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = NnunetEnvironment(root / "raw", root / "preprocessed", root / "results")
        (root / "cases").mkdir()
        rows = balanced_rows(spec, args.subjects_per_group)
        cases = [case for row in rows for case in write_subject(row, spec, root / "cases")]
        write_raw_dataset(cases, DATASET, env)
        env.activate()
        stock_s, stock_plan = timed_plan(1e8)
        ours_s, our_plan = timed_plan(MR_INTENSITY_SAMPLES)
    print(f"cases: {len(cases)} at {spec.matrix}x{spec.matrix}x{spec.slices}")
    print(f"stock fingerprint (1e8 samples): {stock_s:.1f} s")
    print(f"pipeline fingerprint (1e6):      {ours_s:.1f} s")
    print(f"speed-up: {stock_s / ours_s:.1f}x; identical 2d plans: {stock_plan == our_plan}")
    print(f"numpy {np.__version__}")


if __name__ == "__main__":
    main()
