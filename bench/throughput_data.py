"""The partition `bench/train_throughput.py` trains: synthetic subjects of a profile, written as an
nnU-Net raw dataset, planned and preprocessed with the profile's plan edits, and `folds` grouped
cross-validation splits. Imports no Polars and no Dagster, so it runs on a bare GPU machine."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrbias_dagster.lib.cohort.synthetic.demographics import sample_group
from cmrbias_dagster.lib.cohort.synthetic.spec import CohortSpec
from cmrbias_dagster.lib.cohort.synthetic.subject import generate_subject
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment, write_raw_dataset
from cmrbias_dagster.lib.nnunet.plans import plan_and_preprocess

DATASET_ID, DATASET = 900, "Dataset900_throughput"


def balanced_rows(spec: CohortSpec, per_group: int) -> list[dict]:
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
    """One synthetic subject's ED and ES image and label files, as nnU-Net cases."""
    subject, cases = generate_subject(row, spec), []
    for phase in ("ED", "ES"):
        image = folder / f"{row['subject_id']}_{phase}.nii.gz"
        label = folder / f"{row['subject_id']}_{phase}_gt.nii.gz"
        nib.save(nib.Nifti1Image(subject.images[phase], subject.affine), image)
        nib.save(nib.Nifti1Image(subject.labels[phase], subject.affine), label)
        cases.append(Case(f"{row['subject_id']}_{phase}", image, label))
    return cases


def grouped_splits(subjects: list[str], folds: int) -> list[dict[str, list[str]]]:
    """`folds` cross-validation splits with both phases of a subject in the same fold."""
    held = [subjects[fold::folds] for fold in range(folds)]
    return [
        {
            "train": sorted(f"{s}_{p}" for s in subjects if s not in val for p in ("ED", "ES")),
            "val": sorted(f"{s}_{p}" for s in val for p in ("ED", "ES")),
        }
        for val in held
    ]


def build_partition(
    design: StudyDesign, profile: str, per_group: int, folds: int, out: Path, workers: int
) -> NnunetEnvironment:
    """Write, plan and preprocess the partition under `out`; nnU-Net's folders for it."""
    settings = design.profile(profile)
    spec = CohortSpec.from_mapping(settings.synthetic_cohort, seed=design.seed)
    env = NnunetEnvironment(out / "raw", out / "preprocessed", out / "results")
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    rows = balanced_rows(spec, per_group)
    with ThreadPoolExecutor(workers) as pool:
        written = pool.map(lambda row: write_subject(row, spec, cases_dir), rows)
        cases = [case for subject in written for case in subject]
    write_raw_dataset(cases, DATASET, env)
    splits = grouped_splits([row["subject_id"] for row in rows], folds)
    edits = settings.nnunet
    plan_and_preprocess(DATASET_ID, env, edits, splits, num_processes=workers)
    return env
