"""What every cohort layout provides: its subject table, subject folders and canonical files."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.validation import SubjectFiles

Row = dict[str, str | None]


@dataclass(frozen=True)
class CohortOptions:
    """Where a cohort lies and how to read it; empty values mean the layout's default."""

    root: Path
    information_file: Path | None = None
    demographics_format: str = "table"
    required_fields: tuple[str, ...] = ()
    ethnicity_groups: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubjectTable:
    """The canonical demographics table (strings), the fields every row must have, and the name
    of the file it came from (shown in rejections)."""

    rows: pl.DataFrame
    required: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Layout:
    """One cohort layout: how to read its table, find its subject folders and canonical files.

    `subject_files(subject_id, folder, row, canonical_folder)` returns the four canonical files,
    writing converted ones into `canonical_folder`, or raises SubjectError.
    """

    name: str
    read_table: Callable[[CohortOptions], SubjectTable]
    subject_folders: Callable[[Path], dict[str, list[Path]]]
    subject_files: Callable[[str, Path, Row, Path], SubjectFiles]
