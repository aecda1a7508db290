"""Partitioned tables as one Parquet file per partition, so that writers of different partitions
never share a file: `<folder>/<table>/<column>=<value>/.../rows.parquet`, each file replaced
atomically. The partition columns are also in every file; the folder names only address it."""

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

import polars as pl

from cmrbias_dagster.lib.outputs import write_atomically

ROWS_FILE = "rows.parquet"


def partition_file(folder: Path, table: str, partition: Mapping[str, str]) -> Path:
    """Where the rows of one partition of `table` live; `partition` maps column to value."""
    levels = [f"{column}={quote(str(value), safe='')}" for column, value in partition.items()]
    return folder.joinpath(table, *levels, ROWS_FILE)


def write_partition(rows: pl.DataFrame, path: Path) -> Path:
    """Replace the partition's file with `rows` (also when empty: re-materialised to nothing)."""
    buffer = io.BytesIO()
    rows.write_parquet(buffer)
    return write_atomically(path, buffer.getvalue())


def read_partitions(folder: Path, table: str, files: Iterable[Path]) -> pl.DataFrame:
    """The rows of the partitions stored in `files` (missing ones skipped), or no rows with the
    table's columns when none of them is stored."""
    frames = [pl.read_parquet(path) for path in files if path.exists()]
    if frames:
        return pl.concat(frames, how="diagonal_relaxed")
    stored = next(iter(sorted((folder / table).glob(f"**/{ROWS_FILE}"))), None)
    if stored is None:
        raise FileNotFoundError(f"table {table}: no partition stored under {folder / table}")
    return pl.DataFrame(schema=pl.read_parquet_schema(stored))


def has_partitions(folder: Path, table: str) -> bool:
    """Whether any partition of `table` is stored under `folder` (DuckDB views need one)."""
    return next((folder / table).glob(f"**/{ROWS_FILE}"), None) is not None


def table_files_glob(folder: Path, table: str) -> str:
    """The glob that matches every partition file of `table`, and never a temporary one."""
    return str(folder.resolve() / table / "**" / ROWS_FILE)


def _glob_literal(folder: Path, table: str) -> str:
    """The table's files glob as a quoted SQL string literal."""
    return "'" + table_files_glob(folder, table).replace("'", "''") + "'"


def view_sql(schema: str, table: str, folder: Path) -> str:
    """A DuckDB view over every stored partition; a partition written later shows at once."""
    return (
        f"create or replace view {schema}.{table} as select * from "
        f"read_parquet({_glob_literal(folder, table)}, hive_partitioning = false, "
        "union_by_name = true)"
    )


def view_reads_another_folder(stored_sql: str, table: str, folder: Path) -> bool:
    """Whether a stored view made by `view_sql` reads `table`'s partition files from a folder
    other than `folder` (the files were moved or copied since); other views never do."""
    made_by_view_sql = f"/{table}/**/{ROWS_FILE}'" in stored_sql
    return made_by_view_sql and _glob_literal(folder, table) not in stored_sql


def split_by_partition(
    rows: pl.DataFrame, columns: list[str]
) -> Iterable[tuple[dict[str, str], pl.DataFrame]]:
    """The rows of each partition, with its column values, e.g. to move an old table to files."""
    for values, part in rows.partition_by(columns, as_dict=True, maintain_order=True).items():
        yield dict(zip(columns, map(str, values), strict=True)), part
