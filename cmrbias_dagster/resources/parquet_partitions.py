"""Partitioned assets stored as one Parquet file per partition, with a DuckDB view over each table.

Pods of a cluster write their partitions at the same time onto a shared volume, where file locks
are not to be trusted and DuckDB allows one writer: so a partition's rows never pass through the
DuckDB file. Only the view (`<schema>.<table>`, a line of SQL) is written there, under the lock;
when the file stays busy that write is skipped with a warning: no rows are lost, and the view,
once created, shows every partition file written later without being touched. Opening the
tables where the folder has moved re-points the views at it.
"""

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from cmrbias_dagster.lib import partitioned_tables
from cmrbias_dagster.resources.file_lock import exclusive

CONNECT_ATTEMPTS = 8


@dataclass(frozen=True)
class ViewCatalog:
    """The DuckDB file that holds a view over each partitioned table, and its writers' lock."""

    database: str
    schema: str
    folder: Path
    lock_file: Path

    def refresh(self, table: str, columns: list[str]) -> None:
        """(Re)create the table's view; an old DuckDB table of that name moves to files first."""
        with exclusive(self.lock_file), connected(self.database) as connection:
            connection.execute(f"create schema if not exists {self.schema}")
            kind = connection.execute(
                "select table_type from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [self.schema, table],
            ).fetchone()
            if kind == ("BASE TABLE",):
                old = connection.sql(f"select * from {self.schema}.{table}").pl()
                for partition, rows in partitioned_tables.split_by_partition(old, columns):
                    path = partitioned_tables.partition_file(self.folder, table, partition)
                    if not path.exists():
                        partitioned_tables.write_partition(rows, path)
                connection.execute(f"drop table {self.schema}.{table}")
            connection.execute(partitioned_tables.view_sql(self.schema, table, self.folder))

    def follow_folder(self) -> list[str]:
        """Re-point at `folder` the views that read their partition files elsewhere, as they do
        after `data/work` was moved or copied (a view stores an absolute path, so that it reads
        from any working directory); returns the tables re-pointed."""
        if not Path(self.database).exists():
            return []
        with exclusive(self.lock_file), connected(self.database) as connection:
            views = connection.execute(
                "select view_name, sql from duckdb_views() where schema_name = ? and not internal",
                [self.schema],
            ).fetchall()
            moved = [
                table
                for table, sql in views
                if partitioned_tables.view_reads_another_folder(sql, table, self.folder)
                and partitioned_tables.has_partitions(self.folder, table)
            ]
            for table in moved:
                connection.execute(partitioned_tables.view_sql(self.schema, table, self.folder))
        return moved


@contextmanager
def connected(database: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection, retried while another process holds the file."""
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            connection = duckdb.connect(database)
            break
        except duckdb.IOException:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    try:
        yield connection
    finally:
        connection.close()


def partition_values(
    definition: dg.PartitionsDefinition, key: str, expression: str | Mapping[str, str]
) -> dict[str, str]:
    """Column -> value of one partition key, the columns named by the asset's `partition_expr`."""
    if isinstance(definition, dg.MultiPartitionsDefinition):
        by_dimension = definition.get_partition_key_from_str(key).keys_by_dimension
        return {expression[name]: by_dimension[name] for name in sorted(by_dimension)}
    return {str(expression): key}


class ParquetPartitions(dg.IOManager):
    """Partitioned assets go to Parquet files and `catalog`'s views; the others to `tables`."""

    def __init__(self, tables: dg.IOManager, catalog: ViewCatalog) -> None:
        self.tables, self.catalog = tables, catalog

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not context.has_asset_partitions:
            self.tables.handle_output(context, obj)
            return
        expression = partition_expression(context)
        partition = partition_values(
            context.asset_partitions_def, context.asset_partition_key, expression
        )
        table = context.asset_key.path[-1]
        path = partitioned_tables.partition_file(self.catalog.folder, table, partition)
        partitioned_tables.write_partition(obj, path)
        try:
            self.catalog.refresh(table, list(partition))
        except duckdb.IOException as busy:  # e.g. a user's DuckDB shell holds the file
            context.log.warning(f"rows stored in {path}, view {table} not refreshed: {busy}")
        context.add_output_metadata(
            {"row_count": obj.height, "partition_file": dg.MetadataValue.path(str(path))}
        )

    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            return self.tables.load_input(context)
        expression = partition_expression(context.upstream_output)
        table, folder = context.asset_key.path[-1], self.catalog.folder
        paths = [
            partitioned_tables.partition_file(
                folder, table, partition_values(context.asset_partitions_def, key, expression)
            )
            for key in context.asset_partition_keys
        ]
        return partitioned_tables.read_partitions(folder, table, paths)


def partition_expression(context: dg.OutputContext) -> str | Mapping[str, str]:
    """The asset's `partition_expr`: its partition column, or dimension -> column."""
    expression = (context.definition_metadata or {}).get("partition_expr")
    if expression is None:
        raise ValueError(
            f"asset {context.asset_key.to_user_string()} is partitioned but has no "
            "'partition_expr' metadata naming its partition column(s)"
        )
    return expression
