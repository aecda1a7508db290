"""The DuckDB I/O manager: one load or store at a time, and a failed load must not keep the file
locked for other processes."""

import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables
from cmrbias_dagster.resources.file_lock import exclusive


@dg.asset
def upstream_table() -> pl.DataFrame:
    return pl.DataFrame({"x": [1]})


@dg.asset
def downstream_table(upstream_table: pl.DataFrame) -> pl.DataFrame:
    return upstream_table


def test_a_failed_load_leaves_the_database_to_other_processes(tmp_path: Path) -> None:
    database = tmp_path / "tables.duckdb"
    duckdb.connect(str(database)).close()
    io_manager = DuckDBPolarsTables(database=str(database), schema="cmrbias")
    result = dg.materialize(
        [upstream_table, downstream_table],
        selection=[downstream_table],  # upstream never stored: its load fails
        resources={"io_manager": io_manager},
        raise_on_error=False,
    )
    assert not result.success
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).close()"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert opened.returncode == 0, opened.stderr


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    lock, entered = tmp_path / "tables.duckdb.lock", threading.Event()

    def second() -> None:
        with exclusive(lock):
            entered.set()

    with exclusive(lock):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not entered.wait(0.5)  # another descriptor of this very process waits too
    assert entered.wait(10)
    waiter.join()


def test_a_table_whose_columns_changed_is_recreated(tmp_path: Path) -> None:
    """A new release may add columns to an analysis table: the next materialisation replaces
    the table instead of failing on the old one's columns."""
    io_manager = DuckDBPolarsTables(database=str(tmp_path / "tables.duckdb"), schema="cmrbias")

    def table_asset(frame: pl.DataFrame) -> dg.AssetsDefinition:
        @dg.asset(name="analysis_table")
        def analysis_table() -> pl.DataFrame:
            return frame

        return analysis_table

    old = pl.DataFrame({"x": [1, 2]})
    new = pl.DataFrame({"x": [3], "estimate": [0.5], "verdict": ["established"]})
    for frame in (old, new, new.clear(), old):
        result = dg.materialize([table_asset(frame)], resources={"io_manager": io_manager})
        assert result.success
        with duckdb.connect(str(tmp_path / "tables.duckdb")) as connection:
            stored = connection.execute("select * from cmrbias.analysis_table").pl()
        assert stored.equals(frame)
