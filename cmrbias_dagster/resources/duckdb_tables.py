"""The DuckDB I/O manager for Polars tables, keeping empty tables as empty tables.

Runs that share the file take turns: two partitions writing one partitioned table at once make
DuckDB refuse one of them (a write-write conflict between threads of one process, a file lock
between processes), so every load and store holds an exclusive lock on `<database>.lock`. And a
connection is closed even when the load or store fails: left open, it keeps the file locked for
every other process until this one exits.
"""

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from dagster import InputContext, IOManager, OutputContext
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DbIOManager, DbTypeHandler, DuckDbClient, TableSlice
from dagster_duckdb_polars import DuckDBPolarsTypeHandler


class PolarsTableHandler(DuckDBPolarsTypeHandler):
    """Like the stock handler, but an empty frame still creates its (empty) table.

    The stock handler skips the write, so a later read of, say, an empty `rejected_subjects`
    fails with "table does not exist".
    """

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection
    ) -> None:
        if not obj.is_empty():
            super().handle_output(context, table_slice, obj, connection)
            return
        empty_arrow = obj.to_arrow()  # noqa: F841  # read by name in the SQL below
        connection.execute(f"create schema if not exists {table_slice.schema};")
        connection.execute(
            f"create table if not exists {table_slice.schema}.{table_slice.table} "
            "as select * from empty_arrow;"
        )
        context.add_output_metadata({"row_count": 0})


class DuckDBPolarsTables(DuckDBIOManager):
    """Stores and loads Polars DataFrames as DuckDB tables (one table per asset)."""

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def create_io_manager(self, context) -> IOManager:
        tables = DbIOManager(
            db_client=ClosingDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )
        return OneAtATime(tables, Path(f"{self.database}.lock"))

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PolarsTableHandler()]

    @staticmethod
    def default_load_type() -> type:
        return pl.DataFrame


class ClosingDuckDbClient(DuckDbClient):
    """dagster-duckdb's client, but the connection is closed also when the work inside raises."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice: TableSlice) -> Iterator[Any]:
        connection = DuckDbClient.connect(context, table_slice).__enter__()
        try:
            yield connection
        finally:
            connection.close()


class OneAtATime(IOManager):
    """Wraps an I/O manager so that one load or store at a time touches the database."""

    def __init__(self, inner: IOManager, lock_file: Path) -> None:
        self.inner, self.lock_file = inner, lock_file

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        with exclusive(self.lock_file):
            self.inner.handle_output(context, obj)

    def load_input(self, context: InputContext) -> Any:
        with exclusive(self.lock_file):
            return self.inner.load_input(context)


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an flock on `lock_file`; each call opens its own descriptor, so threads of one process
    exclude each other as processes do, and a killed holder's lock is dropped by the kernel."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
