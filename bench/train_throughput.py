"""GPU training throughput: the pipeline's fold training against raw nnU-Net, same plans, one run.

Builds a paper-sized synthetic partition (176 subjects = 352 cases, 208x208x10 at 1.8 mm), plans it
with the paper profile's edit (batch 16, 2d), then measures iterations/s after the first epoch:
  1. raw nnU-Net: `nnUNetv2_train <id> 2d 0 -tr nnUNetTrainer_<E>epochs` in its own process;
  2. in-pipeline: the fold-checkpoint asset's code path (GPU slot lease -> fresh process ->
     lib.nnunet_training.train_fold) on fold 1 with the same schedule;
  3. packed: N folds at once through the same path, sharing one GPU (folds_per_gpu=N).
Run on any CUDA machine: python bench/train_throughput.py [--epochs 5] [--packed 5] [--out DIR]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrbias_dagster.lib.gpu_lease import lease_gpu, visible_gpus
from cmrbias_dagster.lib.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet_dataset import Case, NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet_plan_edits import PlanEdits
from cmrbias_dagster.lib.nnunet_plans import plan_and_preprocess
from cmrbias_dagster.lib.nnunet_training import fold_folder, train_fold
from cmrbias_dagster.lib.study_design import load_study_design
from cmrbias_dagster.lib.synthetic import CohortSpec, generate_subject
from cmrbias_dagster.lib.synthetic.demographics import sample_group
from cmrbias_dagster.lib.training_settings import TrainingSettings

DATASET_ID, DATASET = 900, "Dataset900_throughput"


def paper_rows(spec: CohortSpec, per_group: int) -> list[dict]:
    """Demographics of a 50/50 race x sex partition (black/white), without Polars."""
    rng, rows = np.random.default_rng([spec.seed, 9]), []
    for race in ("black", "white"):
        for sex in ("female", "male"):
            values = sample_group(race, sex, per_group, rng)
            for i in range(per_group):
                row = {k: float(v[i]) for k, v in values.items()}
                rows.append(
                    {"subject_id": f"SYN{len(rows) + 1:05d}", "sex": sex, "race": race, **row}
                )
    return rows


def write_subject(row: dict, spec: CohortSpec, folder: Path) -> list[Case]:
    subject, cases = generate_subject(row, spec), []
    for phase in ("ED", "ES"):
        image, label = (
            folder / f"{row['subject_id']}_{phase}.nii.gz",
            folder / f"{row['subject_id']}_{phase}_gt.nii.gz",
        )
        nib.save(nib.Nifti1Image(subject.images[phase], subject.affine), image)
        nib.save(nib.Nifti1Image(subject.labels[phase], subject.affine), label)
        cases.append(Case(f"{row['subject_id']}_{phase}", image, label))
    return cases


def iterations_per_second(fold_dir: Path, iterations: int) -> float:
    """From nnU-Net's own training log: iterations / median epoch time, first epoch excluded."""
    log = next(fold_dir.glob("training_log_*.txt")).read_text()
    times = [float(t) for t in re.findall(r"Epoch time: ([0-9.]+) s", log)]
    return iterations / statistics.median(times[1:])


def in_pipeline(
    env: NnunetEnvironment, fold: int, settings: TrainingSettings, lock: Path, packing: int
) -> float:
    """The fold-checkpoint asset's path: lease a GPU slot, train in a fresh process."""
    gpus = visible_gpus()
    if not gpus:  # CPU smoke run of this script
        run_in_fresh_process(train_fold, env, DATASET, fold, settings, "cpu")
    else:
        with lease_gpu(lock, gpus, packing) as slot:
            run_in_fresh_process(
                train_fold, env, DATASET, fold, settings, "cuda", environment=slot.environment()
            )
    return iterations_per_second(fold_folder(env, DATASET, fold), settings.iterations_per_epoch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--packed", type=int, default=5)
    parser.add_argument("--packed-epochs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--val-iterations", type=int, default=50)
    parser.add_argument("--skip-raw", action="store_true", help="CPU smoke runs: no raw baseline")
    parser.add_argument("--subjects-per-group", type=int, default=44, help="44 x 4 = 176")
    parser.add_argument("--out", type=Path, default=Path("/tmp/throughput"))
    args = parser.parse_args()
    os.environ.setdefault("nnUNet_compile", "false")  # as the 27.6 it/s anchor; compile is a lever
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    spec = CohortSpec.from_mapping(design.profile("paper").synthetic_cohort, seed=design.seed)
    env = NnunetEnvironment(args.out / "raw", args.out / "preprocessed", args.out / "results")
    cases_dir = args.out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = paper_rows(spec, args.subjects_per_group)
    with ThreadPoolExecutor(8) as pool:
        cases = [
            c for cs in pool.map(lambda r: write_subject(r, spec, cases_dir), rows) for c in cs
        ]
    write_raw_dataset(cases, DATASET, env)
    subjects = [r["subject_id"] for r in rows]
    val = [subjects[f::5] for f in range(5)]
    splits = [
        {
            "train": sorted(f"{s}_{p}" for s in subjects if s not in v for p in ("ED", "ES")),
            "val": sorted(f"{s}_{p}" for s in v for p in ("ED", "ES")),
        }
        for v in val
    ]
    plan_and_preprocess(
        DATASET_ID,
        env,
        PlanEdits.from_mapping(design.profile("paper").nnunet),
        splits,
        num_processes=8,
    )
    print(f"[bench] data + plans ready in {time.monotonic() - started:.0f} s", flush=True)

    figures: dict[str, object] = {"gpu": gpu_name(), "date": time.strftime("%Y-%m-%d")}
    if not args.skip_raw:
        figures["raw_it_s"] = raw_nnunet(env, args.epochs)
        print(f"[bench] raw nnU-Net: {figures['raw_it_s']:.1f} it/s", flush=True)
    settings = TrainingSettings(
        args.epochs, args.iterations, args.val_iterations, final_validation=False
    )
    lock = args.out / "locks"
    figures["pipeline_it_s"] = in_pipeline(env, 1, settings, lock, 1)
    packed = TrainingSettings(
        args.packed_epochs,
        args.iterations,
        args.val_iterations,
        final_validation=False,
        augmentation_workers=3,
    )
    for fold in range(args.packed):
        shutil.rmtree(fold_folder(env, DATASET, fold), ignore_errors=True)
    with ThreadPoolExecutor(args.packed) as pool:
        rates = list(
            pool.map(lambda f: in_pipeline(env, f, packed, lock, args.packed), range(args.packed))
        )
    figures.update(
        packed_folds=args.packed, packed_per_process_it_s=rates, packed_aggregate_it_s=sum(rates)
    )
    if "raw_it_s" in figures:
        figures["pipeline_vs_raw"] = figures["pipeline_it_s"] / figures["raw_it_s"]
        figures["packed_vs_one_raw"] = sum(rates) / figures["raw_it_s"]
    print(json.dumps(figures, indent=2))
    (args.out / "throughput.json").write_text(json.dumps(figures, indent=2))


def gpu_name() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        return "none (CPU)"


def raw_nnunet(env: NnunetEnvironment, epochs: int) -> float:
    """`nnUNetv2_train <id> 2d 0 -tr nnUNetTrainer_<epochs>epochs`: stock trainer, 250 it/epoch."""
    entry = "from nnunetv2.run.run_training import run_training_entry; run_training_entry()"
    command = [sys.executable, "-c", entry, str(DATASET_ID), "2d", "0"]
    command += ["-tr", f"nnUNetTrainer_{epochs}epochs"]
    raw = subprocess.run(
        command, env={**os.environ, **env.variables()}, capture_output=True, text=True
    )
    if raw.returncode:
        print(raw.stdout[-3000:], raw.stderr[-3000:])
        raise SystemExit("raw nnU-Net training failed")
    trainer_dir = f"nnUNetTrainer_{epochs}epochs__nnUNetPlans__2d"
    return iterations_per_second(env.results / DATASET / trainer_dir / "fold_0", 250)


if __name__ == "__main__":
    main()
