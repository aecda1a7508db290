"""Reading the study design file (data/study.yaml): once per process, whatever name reaches the
file, and again only when it changes."""

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .fields import StudyDesignError, typed
from .settings import SyntheticCohortSettings
from .study import StudyDesign, parse_study_design

# The design a code location, the CLI and the benchmarks read unless told another file.
DEFAULT_STUDY_FILE = Path(__file__).resolve().parents[3] / "data" / "study.yaml"


def load_study_design(path: Path = DEFAULT_STUDY_FILE) -> StudyDesign:
    """Read and validate the study design YAML file at `path`: once per process (whatever name
    reaches the file), and again only when the file changes."""
    return _parsed(*_file_version(path))


def load_synthetic_cohort(path: Path, profile: str) -> tuple[SyntheticCohortSettings, int]:
    """Profile `profile`'s synthetic_cohort block and the design's seed, from the same read of
    the file as `load_study_design` but without checking the rest of the design: the cohort
    generator runs before a study's experiments and sizes need to be written."""
    version = _file_version(path)
    where, top = version[0], _read(*version)
    top = top if isinstance(top, Mapping) else {}
    profiles = top.get("profiles") or {}
    if profile not in profiles:
        raise StudyDesignError(f"{where}: unknown profile {profile!r}; known: {sorted(profiles)}")
    seed = top.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StudyDesignError(f"{where}: field 'seed' must be an integer, got {seed!r}")
    block = (profiles[profile] or {}).get("synthetic_cohort")
    if block is None:
        raise StudyDesignError(f"{where}: profile {profile!r} has no synthetic_cohort block")
    where = f"{where}: profile {profile!r}: block 'synthetic_cohort'"
    return typed(SyntheticCohortSettings, block, where, "synthetic_cohort setting"), seed


def _file_version(path: Path) -> tuple[str, int, int]:
    """The file's resolved path, modification time and size: the key of the caches below."""
    resolved = Path(path).resolve()
    status = resolved.stat()
    return str(resolved), status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=16)
def _read(path: str, modified_ns: int, size: int) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.lru_cache(maxsize=16)
def _parsed(path: str, modified_ns: int, size: int) -> StudyDesign:
    return parse_study_design(_read(path, modified_ns, size), source=path)
