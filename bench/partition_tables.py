"""Partitioned tables: rows in the DuckDB file (the old layout) vs one Parquet file per partition.

Writes every partition of a quick-sized `segmentation_metrics` (test subjects x ED/ES x 3 classes)
through both I/O managers, then loads each partition, then queries all of them with SQL through
the DuckDB file (a table before, a view after), and prints the median times and the ratio.
Run: python -m bench.partition_tables [--subjects 48] [--partitions 15] [--repeats 3]
"""

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl

from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables, duckdb_tables

FRAME = dg.PythonObjectDagsterType(pl.DataFrame)
SUMMARY = (
    'select experiment, ratio, "group", count(*) as rows, median(dice) as dice '
    "from cmrbias.segmentation_metrics group by all"
)
COLUMNS = {"partition_expr": {"experiment": "experiment", "ratio": "ratio"}}


def partitions_def(count: int) -> dg.MultiPartitionsDefinition:
    """`count` experiments x ratios 25, 50, 75 (rounded up to whole experiments)."""
    experiments = [f"experiment_{i}" for i in range(-(-count // 3))]
    return dg.MultiPartitionsDefinition(
        {
            "experiment": dg.StaticPartitionsDefinition(experiments),
            "ratio": dg.StaticPartitionsDefinition(["25", "50", "75"]),
        }
    )


def metrics_rows(key: dg.MultiPartitionKey, subjects: int, seed: int) -> pl.DataFrame:
    """A seeded partition shaped like `segmentation_metrics`."""
    rng, n = np.random.default_rng(seed), subjects * 6
    return pl.DataFrame(
        {
            "experiment": key.keys_by_dimension["experiment"],
            "ratio": int(key.keys_by_dimension["ratio"]),
            "subject_id": [f"s{i // 6:04d}" for i in range(n)],
            "phase": ["ED", "ES"] * (n // 2),
            "class": ["LV", "MYO", "RV"] * (n // 3),
            "group": ["a", "b"] * (n // 2),
            **{name: rng.random(n) for name in ("dice", "hd95", "assd", "pred_ml", "true_ml")},
        }
    )


def timed(action: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def measure(io_manager: dg.IOManager, database: Path, args: argparse.Namespace) -> dict:
    """Median seconds to store one partition, to load one, and to query all with SQL."""
    definition = partitions_def(args.partitions)
    config = {"database": str(database), "connection_config": {}}

    def output(key: str) -> dg.OutputContext:
        return dg.build_output_context(
            asset_key="segmentation_metrics",
            partition_key=key,
            asset_partitions_def=definition,
            definition_metadata=COLUMNS,
            resource_config=config,
        )

    def input_for(key: str) -> dg.InputContext:
        return dg.build_input_context(
            asset_key="segmentation_metrics",
            asset_partitions_def=definition,
            partition_key=key,
            upstream_output=output(key),
            dagster_type=FRAME,
            resource_config=config,
        )

    def query() -> pl.DataFrame:
        with duckdb.connect(str(database), read_only=True) as db:
            return db.sql(SUMMARY).pl()

    keys = definition.get_partition_keys()
    writes, reads, queries = [], [], []
    for repeat in range(args.repeats):
        for seed, key in enumerate(keys):
            rows = metrics_rows(key, args.subjects, seed + repeat)
            writes.append(timed(io_manager.handle_output, output(key), rows))
        reads += [timed(io_manager.load_input, input_for(key)) for key in keys]
        queries.append(timed(query))
    assert query()["rows"].sum() == len(keys) * args.subjects * 6
    return {
        "store one": statistics.median(writes),
        "load one": statistics.median(reads),
        "SQL over all": statistics.median(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=48, help="test subjects per partition")
    parser.add_argument("--partitions", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        before_db, after_db = Path(folder) / "before.duckdb", Path(folder) / "after.duckdb"
        before = measure(duckdb_tables(str(before_db), "cmrbias"), before_db, args)
        after_manager = DuckDBPolarsTables(database=str(after_db), schema="cmrbias")
        after = measure(after_manager.create_io_manager(None), after_db, args)
    print(f"{platform.node()}: {args.partitions} partitions x {args.subjects * 6} rows")
    print(f"{'median ms':<18}{'DuckDB rows':>12}{'Parquet':>10}{'ratio':>8}")
    for name in before:
        ratio = before[name] / after[name]
        print(f"{name:<18}{before[name] * 1e3:>12.1f}{after[name] * 1e3:>10.1f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
