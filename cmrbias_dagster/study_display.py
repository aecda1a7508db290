"""What `make study` shows: one overall progress bar on a terminal (rich), a line per partition as
it starts and finishes (time, the `converged` check, each group's overall DSC), and at the end
the headline table. Without a terminal the same lines, without the bar. The runs' own output
(Dagster's events, nnU-Net's epochs) goes to the log files the runner names."""

import os
import sys
from pathlib import Path
from typing import IO

import dagster as dg
import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cmrbias_dagster.lib.analysis.result_tables import table2_wide
from cmrbias_dagster.lib.outputs import markdown_rows

DSC_METADATA = "median_overall_dsc_by_group"
MEDIAN_TABLE_CSV = "table2_median_dsc.csv"


class StudyDisplay:
    """The study's lines and, on a terminal, its progress bar, written to a copy of the stdout
    this process started with, so that redirecting the runs' output leaves them on screen."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.stream = stream or os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
        self.console = Console(file=self.stream, markup=False, highlight=False, soft_wrap=True)
        self.progress = Progress(
            TextColumn("study"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.task = self.progress.add_task("study", total=total)

    def __enter__(self) -> "StudyDisplay":
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()
        self.stream.flush()

    def finish(self) -> None:
        """Leave the bar at its last count, so that the study's closing lines come after it."""
        self.progress.stop()

    def line(self, text: str) -> None:
        """A line above the bar (or alone, without a terminal)."""
        self.console.print(text)

    def run_finished(self, text: str) -> None:
        """A run's closing line, one step of the bar."""
        self.line(text)
        self.progress.advance(self.task)


def partition_summary(instance: dg.DagsterInstance, run_id: str) -> str:
    """`converged yes` (or `NO`, or `-`) `; DSC group value, ...` from a run's check results and its
    segmentation_metrics materialisation; "" when the run made neither."""
    parts = []
    checks = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    converged = [
        event.dagster_event.event_specific_data.passed
        for event in checks
        if event.dagster_event.event_specific_data.check_name == "converged"
    ]
    if converged:
        parts.append("converged " + ("yes" if all(converged) else "NO"))
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        metadata = event.asset_materialization.metadata
        if DSC_METADATA in metadata:
            cells = markdown_rows(metadata[DSC_METADATA].value)
            parts.append("DSC " + ", ".join(f"{group} {float(dsc):.3f}" for group, dsc in cells))
    return "; ".join(parts)


def headline_table(tables_folder: Path) -> str:
    """Each experiment's median overall DSC per group (and `all`) by ratio, from Table 2's CSV;
    "" when the analysis has not written it."""
    csv = tables_folder / MEDIAN_TABLE_CSV
    if not csv.exists():
        return ""
    table = pl.read_csv(csv)
    blocks = []
    for experiment in table["experiment"].unique(maintain_order=True):
        wide = table2_wide(table, experiment)
        header = f"{experiment:<12}" + "".join(f"{name:>10}" for name in wide.columns[1:])
        rows = [
            f"  {ratio:>3} %     " + "".join(f"{value:>10.3f}" for value in values)
            for ratio, *values in wide.rows()
        ]
        blocks.append("\n".join([header, *rows]))
    return "median overall DSC by training share of the first group (%)\n" + "\n\n".join(blocks)
