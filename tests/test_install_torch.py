"""scripts/install_torch.sh: which index torch comes from, with and without an NVIDIA driver, and
the fallback to the default index when PyTorch's CPU index cannot be reached. pip is a fake that
records its arguments (and fails for the CPU index when told to), so nothing is installed."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install_torch.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
FAKE_PYTHON = """#!/bin/bash
# `python -m pip install ...`: records the arguments; fails for the CPU index when told to.
shift 2
printf '%s\\n' "$*" >> "$PIP_CALLS"
if [ -n "${CPU_INDEX_UNREACHABLE:-}" ] && [[ " $* " == *" --index-url CPU_URL "* ]]; then
  echo "ERROR: Could not find a version that satisfies the requirement torch" >&2
  exit 1
fi
"""


def install_torch(
    tmp_path: Path, driver: str = "", unreachable: bool = False, build: str | None = None
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the script on a PATH that holds only a fake `nvidia-smi` when `driver` is "smi", with
    the driver's /proc folder present when `driver` is "proc"; returns the run and pip's calls."""
    bin_dir, proc, calls = tmp_path / "bin", tmp_path / "proc_driver_nvidia", tmp_path / "calls"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(FAKE_PYTHON.replace("CPU_URL", CPU_INDEX))
    python.chmod(0o755)
    if driver == "smi":
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    if driver == "proc":
        proc.mkdir()
    env = {"PATH": str(bin_dir), "PIP_CALLS": str(calls), "NVIDIA_DRIVER_PROC": str(proc)}
    if unreachable:
        env["CPU_INDEX_UNREACHABLE"] = "1"
    if build is not None:
        env["TORCH_BUILD"] = build
    run = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), str(python), "constraints.txt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return run, calls.read_text().splitlines() if calls.exists() else []


CPU_WHEEL = (
    "install -q --no-deps --timeout 10 --retries 0 "
    f"--index-url {CPU_INDEX} -c constraints.txt torch"
)
DEFAULT_INDEX = "install -q -c constraints.txt torch"


def test_without_a_driver_torch_comes_from_the_cpu_index_and_its_dependencies_from_the_default(
    tmp_path: Path,
) -> None:
    run, calls = install_torch(tmp_path)
    assert run.returncode == 0, run.stderr
    assert calls == [CPU_WHEEL, DEFAULT_INDEX]
    assert "no NVIDIA driver found" in run.stdout


@pytest.mark.parametrize("driver", ["smi", "proc"])
def test_with_a_driver_torch_comes_from_the_default_index(tmp_path: Path, driver: str) -> None:
    run, calls = install_torch(tmp_path, driver=driver)
    assert run.returncode == 0, run.stderr
    assert calls == [DEFAULT_INDEX]


def test_an_unreachable_cpu_index_falls_back_to_the_default_index(tmp_path: Path) -> None:
    run, calls = install_torch(tmp_path, unreachable=True)
    assert run.returncode == 0, run.stderr
    assert calls == [CPU_WHEEL, DEFAULT_INDEX]
    assert f"{CPU_INDEX} could not be reached" in run.stderr


@pytest.mark.parametrize(
    ("build", "driver", "expected"),
    [("cpu", "smi", [CPU_WHEEL, DEFAULT_INDEX]), ("default", "", [DEFAULT_INDEX])],
)
def test_torch_build_overrides_the_detection(
    tmp_path: Path, build: str, driver: str, expected: list[str]
) -> None:
    run, calls = install_torch(tmp_path, driver=driver, build=build)
    assert run.returncode == 0, run.stderr
    assert calls == expected


def test_an_unknown_torch_build_is_refused_before_pip_runs(tmp_path: Path) -> None:
    run, calls = install_torch(tmp_path, build="cuda")
    assert run.returncode == 2 and "TORCH_BUILD must be auto, cpu or default" in run.stderr
    assert calls == []


def test_the_makefile_installs_torch_through_the_script_before_the_project() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "-B", ".venv/.installed", "TORCH_BUILD=cpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    torch_step = dry_run.index("scripts/install_torch.sh .venv/bin/python constraints.txt")
    project_step = next(i for i, line in enumerate(dry_run) if "-e '.[dev]'" in line)
    assert torch_step < project_step
