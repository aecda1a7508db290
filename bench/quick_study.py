"""Wall time of the whole study (`make study`) here, in a throwaway instance and work folder.

Generates the profile's synthetic cohort into a temporary folder, then runs the study exactly as
`make study` does (`python -m cmrbias_dagster.study_runner`: every job for every partition, the
profile's `parallel_runs` at a time) with DAGSTER_HOME, CMRBIAS_WORK_DIR and CMRBIAS_COHORT_ROOT
pointing into that folder, so the project's own `.dagster_home` and `data/` are never touched.
Prints the runner's lines as they come, then the cohort time, the time of each job summed over its
partitions (more than its wall time when partitions run side by side), and the total.
Run: python -m bench.quick_study [--profile quick] [--keep DIR] [--parallel-runs N|auto]
(quick: ~26 min on 2 cores). `auto` against a number: one call each, on the same machine.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER_LINE = re.compile(r"^\[study\] (\w+)(?: partition \S+ \(\d+/\d+\))? done in ([0-9.]+) s")


def study_environment(profile: str, folder: Path) -> dict[str, str]:
    """The variables `make study` sets, pointed into `folder`."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CMRBIAS_PROFILE": profile,
        "CMRBIAS_WORK_DIR": str(folder / "work"),
        "CMRBIAS_COHORT_ROOT": str(folder / "cohort"),
        "nnUNet_def_n_proc": os.environ.get("nnUNet_def_n_proc", "2"),
    }


def timed(command: list[str], environment: dict[str, str], on_line) -> float:
    """Run `command` in the repository root, passing each output line to `on_line`; seconds."""
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    ) as process:  # fmt: skip
        for line in process.stdout:
            on_line(line.rstrip("\n"))
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return time.monotonic() - started


def job_seconds(lines: list[str]) -> dict[str, float]:
    """The runner's per-run times summed per job, in the order the jobs ran."""
    totals: dict[str, float] = defaultdict(float)
    for line in lines:
        if match := RUNNER_LINE.match(line):
            totals[match[1]] += float(match[2])
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--parallel-runs", help="N or auto (default: the profile's)")
    args = parser.parse_args()
    runner = [sys.executable, "-m", "cmrbias_dagster.study_runner"]
    runner += ["--parallel-runs", args.parallel_runs] if args.parallel_runs else []
    folder = args.keep or Path(tempfile.mkdtemp(prefix="cmrbias-study-"))
    environment = study_environment(args.profile, folder)
    runner_lines: list[str] = []

    def show(line: str) -> None:
        runner_lines.append(line)
        if line.startswith("[study]") or "wrote" in line:
            print(line, flush=True)

    generate = [sys.executable, "-m", "cmrbias_dagster.cli", "generate-cohort"]
    generate += ["--profile", args.profile, "--out", str(folder / "cohort"), "--workers", "2"]
    try:
        cohort = timed(generate, environment, show)
        study = timed(runner, environment, show)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n[quick_study] profile {args.profile}, {os.cpu_count()} CPU cores")
    print(f"  {next((line for line in runner_lines if 'parallel_runs' in line), '')}")
    print(f"  cohort generation      {cohort:7.1f} s")
    for job, seconds in job_seconds(runner_lines).items():
        print(f"  {job:<22} {seconds:7.1f} s")
    print(f"  study (make study)     {study:7.1f} s = {study / 60:.1f} min")


if __name__ == "__main__":
    main()
