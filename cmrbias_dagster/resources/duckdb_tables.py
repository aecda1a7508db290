"""The I/O manager for Polars tables: one DuckDB file that users open and query, where an empty
table stays an empty table. A partitioned asset's rows are Parquet files, one per partition, with
a view in that file (`parquet_partitions`), re-pointed when the folder has moved since; an
unpartitioned asset is a table in it.

Runs that share the file take turns: two runs writing it at once make DuckDB refuse one of them
(a write-write conflict between threads of one process, a file lock between processes), so every
load and store of a table in it holds an exclusive lock on `<database>.lock`. And a connection is
closed even when the load or store fails: left open, it keeps the file locked for every other
process until this one exits.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from dagster import InputContext, IOManager, OutputContext
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DbIOManager, DbTypeHandler, DuckDbClient, TableSlice
from dagster_duckdb_polars import DuckDBPolarsTypeHandler

from cmrbias_dagster.resources.file_lock import exclusive
from cmrbias_dagster.resources.parquet_partitions import ParquetPartitions, ViewCatalog


class PolarsTableHandler(DuckDBPolarsTypeHandler):
    """Like the stock handler, but an empty frame still creates its (empty) table, and a table
    whose columns changed (a new release of an analysis asset) is recreated.

    The stock handler skips the write of an empty frame, so a later read of, say, an empty
    `rejected_subjects` fails with "table does not exist"; and it inserts into the table it finds,
    so a frame with other columns fails ("table has 20 columns but 24 values were supplied").
    """

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection
    ) -> None:
        drop_if_columns_changed(connection, table_slice, obj.columns)
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


def drop_if_columns_changed(connection, table_slice: TableSlice, columns: list[str]) -> None:
    """Drop an unpartitioned table whose columns are not `columns`: the I/O manager has just
    deleted its rows, and the insert that follows needs the new columns."""
    if table_slice.partition_dimensions:
        return
    existing = connection.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [table_slice.schema, table_slice.table],
    ).fetchall()
    if existing and [name for (name,) in existing] != list(columns):
        connection.execute(f"drop table {table_slice.schema}.{table_slice.table};")


class DuckDBPolarsTables(DuckDBIOManager):
    """Stores and loads Polars DataFrames: one DuckDB table or view per asset, a partitioned
    asset's rows in one Parquet file per partition under `partitions_folder` (default: the
    database's name with `_partitions`, next to it)."""

    partitions_folder: str = ""

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def create_io_manager(self, context) -> IOManager:
        lock_file = Path(f"{self.database}.lock")
        folder = Path(self.partitions_folder or partitions_folder_of(Path(self.database)))
        catalog = ViewCatalog(self.database, self.schema_, folder, lock_file)
        try:
            catalog.follow_folder()
        except duckdb.IOException as busy:  # e.g. a user's DuckDB shell holds the file
            dg.get_dagster_logger().warning(f"views in {self.database} not re-pointed: {busy}")
        return ParquetPartitions(duckdb_tables(self.database, self.schema_), catalog)

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PolarsTableHandler()]

    @staticmethod
    def default_load_type() -> type:
        return pl.DataFrame


def partitions_folder_of(database: Path) -> Path:
    """Where a database's partitioned tables live by default: `cmrbias_quick_partitions/`."""
    return database.with_name(f"{database.stem}_partitions")


def duckdb_tables(database: str, schema: str) -> IOManager:
    """Every table inside the DuckDB file, one load or store at a time."""
    tables = DbIOManager(
        db_client=ClosingDuckDbClient(),
        database=database,
        schema=schema,
        type_handlers=DuckDBPolarsTables.type_handlers(),
        default_load_type=pl.DataFrame,
        io_manager_name="DuckDBIOManager",
    )
    return OneAtATime(tables, Path(f"{database}.lock"))


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
