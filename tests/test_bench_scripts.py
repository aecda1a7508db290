"""Every benchmark script imports: a refactor that moves a helper must not break `bench/`."""

import importlib
from pathlib import Path

import pytest

from bench.effect_probe import validation_rotations

BENCH = Path(__file__).parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_script_imports_and_has_a_main(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "main", None)) or name == "throughput_data"


def test_effect_probe_repeats_validate_on_disjoint_fifths() -> None:
    ids = [f"SYN{i:05d}_ED" for i in range(20)]
    splits = validation_rotations(ids, 3)
    assert splits[0] == {"train": ids[4:], "val": ids[:4]}  # the single-fold probe's split
    vals = [set(split["val"]) for split in splits]
    assert all(len(v) == 4 for v in vals) and len(set().union(*vals)) == 12
    assert all(set(split["train"]) == set(ids) - set(split["val"]) for split in splits)
