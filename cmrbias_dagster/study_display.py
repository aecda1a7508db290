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

from cmrbias_dagster.lib.analysis.findings import gap_cell, share_cell
from cmrbias_dagster.lib.outputs import markdown_rows

DSC_METADATA = "median_overall_dsc_by_group"
# The exported tables the closing headline is read from (gap_verdicts, ratio_dependence_table).
HEADLINE_TABLES = ("gap_verdicts", "ratio_dependence")


class StudyDisplay:
    """The study's lines and, on a terminal, its progress bar of partitions trained, written to a
    copy of the stdout this process started with, so that redirecting the runs' output leaves
    them on screen."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.stream = stream or os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
        self.console = Console(file=self.stream, markup=False, highlight=False, soft_wrap=True)
        self.progress = Progress(
            TextColumn("study"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("partitions"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
            # The ETA from every partition finished so far, not rich's last 30 s, in which a
            # partition of several minutes rarely finishes.
            speed_estimate_period=24 * 3600,
            # Rich would otherwise print this process's own stdout and stderr above the bar: the
            # runs executed here (the cohort and analysis jobs) write there, into their log files.
            redirect_stdout=False,
            redirect_stderr=False,
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

    def advance(self) -> None:
        """One partition more trained and evaluated."""
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
    """The README's results table for this run, as text: per experiment and ratio each group's
    median overall DSC and the gap with its 95 % CI and verdict (`gap_verdicts`), then the share
    dependence (`ratio_dependence_table`); "" when the analysis has not written them."""
    gaps_csv, trend_csv = (tables_folder / f"{name}.csv" for name in HEADLINE_TABLES)
    if not gaps_csv.exists():
        return ""
    verdicts = pl.read_csv(gaps_csv).filter(pl.col("class") == "overall").sort("ratio")
    trends = pl.read_csv(trend_csv) if trend_csv.exists() else pl.DataFrame()
    blocks = []
    for (experiment,), rows in verdicts.group_by("experiment", maintain_order=True):
        first = rows.row(0, named=True)
        groups = f"{first['group_a']:>10}{first['group_b']:>10}"
        lines = [f"{experiment:<12}{groups}   gap, points [95 % CI]"]
        for row in rows.iter_rows(named=True):
            medians = f"{row['median_a']:>10.3f}{row['median_b']:>10.3f}"
            lines.append(f"  {row['ratio']:>3} %     {medians}   {gap_cell(row)}")
        if not trends.is_empty():
            lines.append(f"  share dependence: {share_cell(trends, experiment)}")
        blocks.append("\n".join(lines))
    return "median overall DSC by training share of the first group\n" + "\n\n".join(blocks)
