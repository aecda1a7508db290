"""The DuckDB I/O manager for Polars tables, keeping empty tables as empty tables."""

from collections.abc import Sequence

import polars as pl
from dagster import OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBIOManager
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

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PolarsTableHandler()]

    @staticmethod
    def default_load_type() -> type:
        return pl.DataFrame
