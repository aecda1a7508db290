"""The synthetic cohort on disk: demographics and the UK Biobank layout, written atomically."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl

from cmrbias_dagster.lib.outputs import replace_folder

from .demographics import sample_group
from .spec import CohortSpec
from .subject import PHASES, generate_subject

DEMOGRAPHIC_COLUMNS = ("subject_id", "sex", "race", "age", "height_cm", "weight_kg", "bmi")
SUBJECT_FILES = ("sa_ED.nii.gz", "sa_ES.nii.gz", "label_sa_ED.nii.gz", "label_sa_ES.nii.gz")


def sample_demographics(spec: CohortSpec) -> pl.DataFrame:
    """Demographics of every subject, ids SYN00001.. in a seeded shuffle of the groups."""
    rng = np.random.default_rng([spec.seed, 0])
    parts = [
        pl.DataFrame({"sex": sex, "race": race, **sample_group(race, sex, n, rng)})
        for race, by_sex in spec.subjects.items()
        for sex, n in by_sex.items()
        if n > 0
    ]
    table = pl.concat(parts)
    ids = [f"SYN{i + 1:05d}" for i in rng.permutation(table.height)]
    return (
        table.with_columns(subject_id=pl.Series(ids)).select(DEMOGRAPHIC_COLUMNS).sort("subject_id")
    )


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_data_dtype(array.dtype)
    nib.save(image, path)


def cohort_is_complete(out_dir: Path) -> bool:
    """True when COHORT.json, demographics.csv and every subject's four files exist."""
    if not (out_dir / "COHORT.json").is_file() or not (out_dir / "demographics.csv").is_file():
        return False
    ids = pl.read_csv(out_dir / "demographics.csv")["subject_id"]
    return all((out_dir / sid / name).is_file() for sid in ids for name in SUBJECT_FILES)


def _write_subject(row: Mapping, spec: CohortSpec, folder: Path) -> None:
    subject = generate_subject(row, spec)
    (folder / subject.subject_id).mkdir()
    for phase in PHASES:
        for prefix, arrays in (("sa", subject.images), ("label_sa", subject.labels)):
            path = folder / subject.subject_id / f"{prefix}_{phase}.nii.gz"
            _write_nifti(arrays[phase], subject.affine, path)


def write_cohort(spec: CohortSpec, out_dir: Path, workers: int = 1) -> Path:
    """Write the cohort to `out_dir` atomically (temporary sibling, then rename).

    `workers` > 1 generates subjects in that many processes; the result is identical.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        demographics = sample_demographics(spec)
        rows = demographics.to_dicts()
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_subject, rows, repeat(spec), repeat(tmp), chunksize=8))
        else:
            for row in rows:
                _write_subject(row, spec, tmp)
        demographics.write_csv(tmp / "demographics.csv")
        (tmp / "COHORT.json").write_text(json.dumps(spec.summary(), indent=2) + "\n")
        replace_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
