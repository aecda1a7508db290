"""ACDC: `patientXXX/patientXXX_frameYY.nii.gz`, `patientXXX_frameYY_gt.nii.gz` and `Info.cfg`
(`ED: 1`, `ES: 12`, `Group: DCM`, `Height: 184.0`, `NbFrame: 30`, `Weight: 95.0`). Frames are
1-based. Labels are reversed (1 RV, 2 MYO, 3 LV) and are written remapped to the canonical
1 LVBP, 2 LVM, 3 RVBP; images are used in place. No sex or race: `pathology` (the Group) is the
attribute.
"""

from pathlib import Path

import numpy as np
import polars as pl

from cmrbias_dagster.lib.cohort.demographics import PROBLEM, PROBLEM_FILE
from cmrbias_dagster.lib.cohort.importers.canonical_files import (
    image_like,
    source_stamp,
    write_canonical,
)
from cmrbias_dagster.lib.cohort.importers.frames import frame_index
from cmrbias_dagster.lib.cohort.importers.layout import CohortOptions, Layout, Row, SubjectTable
from cmrbias_dagster.lib.cohort.importers.listing import nested_subject_folders
from cmrbias_dagster.lib.cohort.validation import SubjectFiles
from cmrbias_dagster.lib.cohort.volumes import SubjectError, read_nifti

INFO_FILE = "Info.cfg"
INFO_KEYS = {
    "Group": "pathology",
    "Height": "height_cm",
    "Weight": "weight_kg",
    "ED": "_ed_frame",
    "ES": "_es_frame",
    "NbFrame": "_frames",
}


def parse_info(text: str) -> dict[str, str]:
    """`Key: value` lines of an Info.cfg, keys as written, values stripped."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def info_row(subject_id: str, folder: Path) -> dict[str, str | None]:
    """One canonical row from a subject's Info.cfg; `_problem` when it is missing or lacks keys."""
    row: dict[str, str | None] = {"subject_id": subject_id, **dict.fromkeys(INFO_KEYS.values())}
    path = folder / INFO_FILE
    if not path.is_file():
        return {**row, PROBLEM: "file is missing", PROBLEM_FILE: INFO_FILE}
    info = parse_info(path.read_text(errors="replace"))
    row.update({name: info.get(key) or None for key, name in INFO_KEYS.items()})
    absent = [key for key in ("ED", "ES", "Group") if not info.get(key)]
    problem = f"lacks {', '.join(absent)}" if absent else None
    return {**row, PROBLEM: problem, PROBLEM_FILE: INFO_FILE if problem else None}


def read_table(options: CohortOptions) -> SubjectTable:
    """One row per subject folder, read from its Info.cfg."""
    folders = nested_subject_folders(options.root)
    rows = [info_row(subject_id, paths[0]) for subject_id, paths in folders.items()]
    schema = dict.fromkeys(info_row("", options.root / "\0absent"), pl.String)
    return SubjectTable(
        pl.DataFrame(rows, schema=schema), options.required_fields or ("pathology",), INFO_FILE
    )


def reverse_labels(labels: np.ndarray) -> np.ndarray:
    """ACDC's 1 RV / 3 LV swapped into the canonical 1 LVBP / 3 RVBP; other values kept."""
    remapped = labels.copy()
    remapped[labels == 1], remapped[labels == 3] = 3, 1
    return remapped


def frame_count(subject_id: str, text: str | None) -> int:
    """NbFrame as a number; without it, a frame past the last one shows up as a missing file."""
    try:
        return int(float(text)) if text else 10**4
    except ValueError:
        raise SubjectError(subject_id, INFO_FILE, f"NbFrame {text!r} is not a number") from None


def subject_files(subject_id: str, folder: Path, row: Row, canonical: Path) -> SubjectFiles:
    """The ED and ES frames in place, their labels remapped into `canonical`."""
    count = frame_count(subject_id, row.get("_frames"))
    names = {
        phase: f"{subject_id}_frame{frame_index(subject_id, INFO_FILE, key, text, 1, count):02d}"
        for phase, key, text in (
            ("ed", "ED", row.get("_ed_frame")),
            ("es", "ES", row.get("_es_frame")),
        )
    }
    labels = {phase: folder / f"{name}_gt.nii.gz" for phase, name in names.items()}

    def remap() -> dict:
        converted = {}
        for phase, path in labels.items():
            image, data = read_nifti(subject_id, path)
            converted[f"label_{phase}"] = image_like(reverse_labels(data), image)
        return converted

    written = write_canonical(canonical, source_stamp(labels.values()), remap)
    images = {f"image_{phase}": folder / f"{name}.nii.gz" for phase, name in names.items()}
    shown = {
        **{key: path.name for key, path in images.items()},
        **{f"label_{phase}": path.name for phase, path in labels.items()},
    }
    return SubjectFiles({**images, **written}, shown)


LAYOUT = Layout("acdc", read_table, nested_subject_folders, subject_files)
