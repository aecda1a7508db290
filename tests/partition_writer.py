"""Writes one partition of the table `scores` again and again, as a cluster pod would: run as
`python -m tests.partition_writer <database> <experiment|ratio> <rounds> <rows>`."""

import sys

import dagster as dg
import polars as pl

from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables

PARTITIONS = dg.MultiPartitionsDefinition(
    {
        "experiment": dg.StaticPartitionsDefinition(["race", "sex"]),
        "ratio": dg.StaticPartitionsDefinition(["25", "50"]),
    }
)
COLUMNS = {"partition_expr": {"experiment": "experiment", "ratio": "ratio"}}


def scores(key: str, round_: int, rows: int) -> pl.DataFrame:
    """`rows` rows of partition `key`, all marked with `round_`."""
    experiment, ratio = key.split("|")
    return pl.DataFrame(
        {"experiment": experiment, "ratio": int(ratio), "round": round_, "value": range(rows)}
    )


def write_rounds(database: str, key: str, rounds: int, rows: int) -> None:
    """Store partition `key` of `scores` `rounds` times through the project's I/O manager."""
    io_manager = DuckDBPolarsTables(database=database, schema="cmrbias").create_io_manager(None)
    for round_ in range(rounds):
        context = dg.build_output_context(
            asset_key="scores",
            partition_key=key,
            asset_partitions_def=PARTITIONS,
            definition_metadata=COLUMNS,
        )
        io_manager.handle_output(context, scores(key, round_, rows))


if __name__ == "__main__":
    write_rounds(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
