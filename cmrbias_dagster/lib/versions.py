"""Data versions of tables: a hash of their content, so unchanged outputs keep their version."""

import hashlib

import polars as pl


def table_version(table: pl.DataFrame, columns: list[str], sort_by: str = "subject_id") -> str:
    """A short hash of the given columns of `table`, independent of row order."""
    rows = table.select(columns).sort(sort_by).rows()
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
