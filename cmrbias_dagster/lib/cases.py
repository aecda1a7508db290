"""From a drawn set of subjects to nnU-Net cases: one case per subject and cardiac phase."""

from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.folds import case_id
from cmrbias_dagster.lib.nnunet_dataset import Case
from cmrbias_dagster.lib.subject_validation import PHASES


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
