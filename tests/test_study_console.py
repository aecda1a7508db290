"""`cmrbias` and the study runner's options, `parallel_runs: auto`, and the display's lines."""

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cmrbias_dagster.lib.analysis import gaps, ratio_dependence
from cmrbias_dagster.lib.design.parallelism import (
    resolve_parallel_runs,
    runs_for_machine,
)
from cmrbias_dagster.lib.design.study import parse_study_design
from cmrbias_dagster.lib.outputs import export_table, markdown_rows
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE
from cmrbias_dagster.study_display import StudyDisplay, headline_table
from tests.test_repeats import RACE_BLACK, design_mapping, planted_scores

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


@pytest.mark.parametrize(
    ("cores", "available", "expected"),
    [(2, 20 * GIB, 2), (16, 20 * GIB, 10), (16, None, 16), (4, 1 * GIB, 1), (1, 64 * GIB, 1)],
)
def test_auto_takes_a_run_per_core_within_memory(
    cores: int, available: int | None, expected: int
) -> None:
    assert runs_for_machine(cores, available, 2 * GIB) == expected


def test_an_explicit_number_is_kept_and_auto_says_why() -> None:
    assert resolve_parallel_runs(3).runs == 3
    assert resolve_parallel_runs("3", cores=1).runs == 3  # an override from the command line
    auto = resolve_parallel_runs("auto", cores=8, available_bytes=6 * GIB)
    assert auto.runs == 3 and "8 usable cores" in auto.reason and "6.0 GiB" in auto.reason
    with pytest.raises(ValueError, match="at least 1"):
        resolve_parallel_runs(0)


def test_the_quick_profile_follows_the_machine() -> None:
    import yaml

    design = parse_study_design(yaml.safe_load(DEFAULT_STUDY_FILE.read_text()))
    assert design.profile("quick").parallel_runs == "auto"


def test_markdown_rows_read_the_group_medians() -> None:
    table = "| group | median_overall_dsc |\n|---|---|\n| black | 0.9612 |\n| white | 0.98 |"
    assert markdown_rows(table) == [["black", "0.9612"], ["white", "0.98"]]


def test_headline_table_has_each_experiments_groups_gaps_and_trend(tmp_path: Path) -> None:
    """The closing table is the report's headline, from the exported verdict tables."""
    assert headline_table(tmp_path) == ""
    design = parse_study_design(design_mapping(3, race_black=RACE_BLACK))
    names = ["race_black", "race_black_r2", "race_black_r3"]
    scores = planted_scores(design, dict(zip(names, (0.04, 0.045, 0.05), strict=True)))
    margin = design.equivalence_margin
    export_table(gaps.gap_table(scores, design, margin), tmp_path, "gap_verdicts")
    trend = ratio_dependence.ratio_dependence_table(scores, design, margin)
    export_table(trend, tmp_path, "ratio_dependence")
    lines = headline_table(tmp_path).splitlines()
    assert lines[1].split()[:3] == ["race_black", "black", "white"]
    assert lines[2].split()[:5] == ["0", "%", f"{0.8225:.3f}", f"{0.7775:.3f}", "+4.5"]
    assert lines[2].endswith("] established") and lines[3].startswith("   50 %")
    assert lines[4].startswith("  share dependence: ")


@pytest.mark.parametrize(
    "command",
    [
        ["cmrbias_dagster.console", "study", "--help"],
        ["cmrbias_dagster.console", "cohort", "--help"],
        ["cmrbias_dagster.console", "ui", "--help"],
        ["cmrbias_dagster.console", "report", "--help"],
        ["cmrbias_dagster.study_runner", "--help"],
    ],
)
def test_help_prints_the_options_and_starts_nothing(command: list[str], tmp_path: Path) -> None:
    environment = {"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: cmrbias")
    assert list(tmp_path.iterdir()) == []  # no instance storage: no run started


def test_each_runs_log_file_is_named_by_its_job_and_partition(tmp_path: Path) -> None:
    from cmrbias_dagster.run_output import log_file

    assert log_file(tmp_path, "cohort_job", None) == tmp_path / "cohort_job.log"
    assert log_file(tmp_path, "experiment_job", "sex") == tmp_path / "experiment_job-sex.log"
    assert log_file(tmp_path, "partition_job", "sex|50") == tmp_path / "partition_job-sex-50.log"


def test_the_bar_counts_trained_partitions_and_lines_leave_it_alone() -> None:
    import io

    stream = io.StringIO()
    with StudyDisplay(15, stream=stream) as display:
        display.line("[study] cohort_job done in 2.0 s")
        display.advance()
        (task,) = display.progress.tasks
        assert (task.completed, task.total) == (1, 15)
    assert stream.getvalue() == "[study] cohort_job done in 2.0 s\n"  # no terminal: no bar


def _drain(controller: int, chunks: list[bytes]) -> None:
    """Everything written to a pty's terminal side, read from its controller until the terminal
    side is closed (Linux then answers EIO)."""
    import os

    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            return
        if not chunk:
            return
        chunks.append(chunk)


def test_on_a_terminal_the_runs_output_stays_off_the_display(capsys) -> None:
    """The runs executed in the runner's process print to its stdout and stderr, which the runner
    sends to their log files; the display on the terminal shows only its own lines and bar."""
    import os
    import pty
    import sys
    import tty

    controller, terminal = pty.openpty()
    # In its default (canonical) mode a pty hands its reader one line at a time and drops what
    # overflows a line's 4 KiB: raw mode, and a reader beside the display until the terminal
    # side closes, see every byte.
    tty.setraw(terminal)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(controller, chunks))
    reader.start()
    stream = os.fdopen(terminal, "w", buffering=1)
    with stream, StudyDisplay(3, stream=stream) as display:
        assert display.console.is_terminal
        display.line("[study] cohort_job done in 2.0 s")
        print("DEBUG - cohort_job - STEP_START")
        print("DEBUG - cohort_job - STEP_SUCCESS", file=sys.stderr)
        display.advance()
    reader.join(timeout=10)
    os.close(controller)
    shown = b"".join(chunks).decode()
    assert "[study] cohort_job done" in shown and "1/3" in shown
    assert "DEBUG" not in shown
    assert "STEP_START" in capsys.readouterr().out
