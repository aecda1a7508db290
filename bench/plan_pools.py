"""Planning cost: nnU-Net's spawn worker pools vs threads in the already isolated process.

Builds a quick-profile-sized raw dataset (32 synthetic subjects = 64 cases at 64x64x8) and runs
fingerprint + plan + preprocessing both ways in fresh processes, as the `nnunet_plans` asset does;
checks that the plans and the preprocessed cases are identical.
Run: python -m bench.plan_pools [--workers 2]
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from bench.effect_probe import rows_for
from bench.throughput_data import write_subject
from cmrbias_dagster.lib.cohort.synthetic import CohortSpec
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plans import plan_and_preprocess

DATASET_ID, DATASET = 903, "Dataset903_plan_pools"


def digest(folder: Path) -> str:
    """One hash over the plans and every preprocessed file (names and bytes)."""
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return sha.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    quick = design.profile("quick")
    spec = CohortSpec.from_mapping(quick.synthetic_cohort, design.seed)
    rows = rows_for(("white", "black"), 8, design.seed, 1)
    timings, digests = {}, {}
    for threads in (False, True):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            env = NnunetEnvironment(root / "raw", root / "preprocessed", root / "results")
            (root / "cases").mkdir()
            cases = [c for r in rows for c in write_subject(r, spec, root / "cases")]
            write_raw_dataset(cases, DATASET, env)
            ids = sorted({c.case_id for c in cases})
            splits = [{"train": ids[16:], "val": ids[:16]}, {"train": ids[:16], "val": ids[16:]}]
            edits = quick.nnunet
            started = time.monotonic()
            target = run_in_fresh_process(
                plan_and_preprocess, DATASET_ID, env, edits, splits, args.workers, threads
            )
            timings[threads] = time.monotonic() - started
            digests[threads] = digest(target)
    print(f"{len(rows)} subjects ({2 * len(rows)} cases), {args.workers} workers")
    print(f"spawn pools (nnU-Net):          {timings[False]:6.1f} s")
    print(f"threads in the fresh process:   {timings[True]:6.1f} s")
    print(
        f"speed-up {timings[False] / timings[True]:.2f}x; identical output: "
        f"{digests[False] == digests[True]}"
    )


if __name__ == "__main__":
    main()
