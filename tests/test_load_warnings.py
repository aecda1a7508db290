"""Loading the code location, as the UI and the study runner do, prints no warning."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = "from cmrbias_dagster.definitions import defs; defs.resolve_asset_graph()"


def test_code_location_loads_without_a_warning(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path)}
    environment.pop("PYTHONWARNINGS", None)
    # Python's own default filters, as `dagster dev` and `cmrbias study` run with.
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD], env=environment, capture_output=True, text=True, check=True
    )
    assert "Warning" not in loaded.stderr, loaded.stderr
