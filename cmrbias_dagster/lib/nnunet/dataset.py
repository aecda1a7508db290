"""nnU-Net's raw dataset folder (imagesTr, labelsTr, dataset.json) and the three nnU-Net roots."""

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.clinical import CLASS_NAMES
from cmrbias_dagster.lib.cohort.validation import PHASES
from cmrbias_dagster.lib.outputs import replace_folder, staging_folder
from cmrbias_dagster.lib.splits.folds import case_id

LABELS = {"background": 0} | {name: label for label, name in CLASS_NAMES.items()}
CHANNEL_NAMES = {"0": "cineMRI"}
FILE_ENDING = ".nii.gz"
# nnU-Net splits image names at "_0000" and treats folder names as dataset names: keep ids plain.
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Case:
    """One training case: a subject at one cardiac phase, with its image and label files."""

    case_id: str
    image: Path
    label: Path


@dataclass(frozen=True)
class NnunetEnvironment:
    """The three folders nnU-Net reads and writes: raw datasets, preprocessed data, results."""

    raw: Path
    preprocessed: Path
    results: Path

    def variables(self) -> dict[str, str]:
        """nnU-Net's environment variables naming these folders."""
        return {
            "nnUNet_raw": str(self.raw),
            "nnUNet_preprocessed": str(self.preprocessed),
            "nnUNet_results": str(self.results),
        }

    def activate(self) -> None:
        """Point nnU-Net at these folders (it reads them from os.environ) and cap its pools at 2."""
        os.environ.update(self.variables())
        # nnU-Net's default of 8 workers per pool exhausts a small machine's memory.
        os.environ.setdefault("nnUNet_def_n_proc", "2")


def _check_cases(cases: Sequence[Case]) -> None:
    if not cases:
        raise ValueError("an nnU-Net dataset needs at least one case")
    seen: set[str] = set()
    for case in cases:
        if not _CASE_ID.match(case.case_id):
            raise ValueError(f"case id {case.case_id!r} is not a plain nnU-Net identifier")
        if case.case_id in seen:
            raise ValueError(f"case id {case.case_id!r} appears more than once")
        seen.add(case.case_id)
        for role, path in (("image", case.image), ("label", case.label)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"case {case.case_id}: {role} file {path} does not exist")


def _link_or_copy(source: Path, destination: Path) -> None:
    # Inputs are never rewritten in place, so a hard link is as good as a copy and costs nothing.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def link_case(case: Case, image: Path, label: Path) -> None:
    """The case's image and label files as they are, at nnU-Net's names."""
    _link_or_copy(Path(case.image), image)
    _link_or_copy(Path(case.label), label)


def write_raw_dataset(
    cases: Sequence[Case],
    name: str,
    env: NnunetEnvironment,
    write_case: Callable[[Case, Path, Path], None] = link_case,
) -> Path:
    """Write `env.raw/<name>` (imagesTr, labelsTr, dataset.json) atomically; return the folder.
    `write_case(case, image, label)` writes a case's two files (default: as they are)."""
    _check_cases(cases)
    target = env.raw / name
    staging = staging_folder(target)
    try:
        (staging / "imagesTr").mkdir()
        (staging / "labelsTr").mkdir()
        for case in cases:
            write_case(
                case,
                staging / "imagesTr" / f"{case.case_id}_0000{FILE_ENDING}",
                staging / "labelsTr" / f"{case.case_id}{FILE_ENDING}",
            )
        dataset_json = {
            "channel_names": CHANNEL_NAMES,
            "labels": LABELS,
            "numTraining": len(cases),
            "file_ending": FILE_ENDING,
            "overwrite_image_reader_writer": "NibabelIO",
        }
        (staging / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def subject_cases(subjects: pl.DataFrame, manifest: pl.DataFrame) -> list[Case]:
    """The ED and ES cases of each subject in `subjects`, with paths from the manifest."""
    located = subjects.select("subject_id").join(manifest, on="subject_id", how="left")
    unknown = located.filter(pl.col("image_ed").is_null())["subject_id"].to_list()
    if unknown:
        raise ValueError(f"subjects not in the manifest: {', '.join(unknown[:10])}")
    return [
        Case(
            case_id(row["subject_id"], phase),
            Path(row[f"image_{phase.lower()}"]),
            Path(row[f"label_{phase.lower()}"]),
        )
        for row in located.sort("subject_id").iter_rows(named=True)
        for phase in PHASES
    ]
