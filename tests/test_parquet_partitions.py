"""Partitioned tables as one Parquet file per partition: concurrent writers lose nothing, a
re-materialised partition replaces its rows, and the DuckDB file's readers see what they saw."""

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from cmrbias_dagster.automation.in_process import training_split_members
from cmrbias_dagster.lib.partitioned_tables import ROWS_FILE, read_partitions
from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables
from tests.partition_writer import COLUMNS, PARTITIONS, scores, write_rounds

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = dg.StaticPartitionsDefinition(["race", "sex"])


def query(database: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.sql(sql).pl()


def test_two_processes_writing_partitions_at_once_lose_nothing(tmp_path: Path) -> None:
    database, rounds, rows = tmp_path / "tables.duckdb", 30, 2000
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.partition_writer", str(database), key, str(rounds)]
            + [str(rows)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key in ("race|25", "sex|50")
    ]
    files = tmp_path / "tables_partitions" / "scores"
    seen = 0
    while any(writer.poll() is None for writer in writers):
        for path in files.glob(f"**/{ROWS_FILE}"):
            partition = pl.read_parquet(path)  # never half a file, never two rounds mixed
            assert partition.height == rows and partition["round"].n_unique() == 1
            seen += 1
        time.sleep(0.01)
    for writer in writers:
        assert writer.wait() == 0, writer.stderr.read()
    assert seen > 0
    stored = query(
        database, "select experiment, ratio, round, count(*) n from cmrbias.scores group by all"
    )
    assert stored.sort("experiment").rows() == [
        ("race", 25, rounds - 1, rows),
        ("sex", 50, rounds - 1, rows),
    ]
    left = sorted(str(path.relative_to(files)) for path in files.rglob("*") if path.is_file())
    assert left == [f"experiment=race/ratio=25/{ROWS_FILE}", f"experiment=sex/ratio=50/{ROWS_FILE}"]


class Draw(dg.Config):
    first: int = 0
    size: int = 4


@dg.asset(name="test_set", partitions_def=EXPERIMENTS, metadata={"partition_expr": "experiment"})
def drawn_test_set(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"experiment": context.partition_key, "subject_id": ["t1", "t2"]})


@dg.asset(
    partitions_def=PARTITIONS,
    metadata=COLUMNS,
)
def training_split(
    context: dg.AssetExecutionContext, config: Draw, test_set: pl.DataFrame
) -> pl.DataFrame:
    key = context.partition_key.keys_by_dimension
    assert test_set["experiment"].to_list() == [key["experiment"]] * 2
    ids = [f"s{i:03d}" for i in range(config.first, config.first + config.size)]
    return pl.DataFrame({"experiment": key["experiment"], "ratio": int(key["ratio"])}).join(
        pl.DataFrame({"subject_id": ids}), how="cross"
    )


@dg.asset
def split_sizes(training_split: pl.DataFrame) -> pl.DataFrame:
    return training_split.group_by("experiment", "ratio").len().sort("experiment", "ratio")


def test_a_rematerialised_partition_replaces_its_rows_for_every_reader(tmp_path: Path) -> None:
    database = tmp_path / "cmrbias_tiny.duckdb"
    resources = {"io_manager": DuckDBPolarsTables(database=str(database), schema="cmrbias")}
    assets = [drawn_test_set, training_split, split_sizes]

    def draw(key: str, first: int = 0, size: int = 4) -> None:
        config = {"ops": {"training_split": {"config": {"first": first, "size": size}}}}
        result = dg.materialize(
            assets,
            selection=[training_split],
            partition_key=key,
            resources=resources,
            run_config=config,
        )
        assert result.success

    for experiment in ("race", "sex"):
        dg.materialize(
            assets, selection=[drawn_test_set], partition_key=experiment, resources=resources
        )
    for key in ("race|25", "race|50", "sex|25"):
        draw(key)
    draw("race|25", first=100, size=3)

    members = training_split_members(database)
    assert members == {
        "race|25": ["s100", "s101", "s102"],
        "race|50": ["s000", "s001", "s002", "s003"],
        "sex|25": ["s000", "s001", "s002", "s003"],
    }
    sizes = dg.materialize(assets, selection=[split_sizes], resources=resources)
    assert sizes.output_for_node("split_sizes").rows() == [
        ("race", 25, 3),
        ("race", 50, 4),
        ("sex", 25, 4),
    ]
    assert query(database, "select count(*) n from cmrbias.test_set")["n"].item() == 4


def test_an_old_duckdb_table_moves_to_partition_files(tmp_path: Path) -> None:
    database = tmp_path / "tables.duckdb"
    with duckdb.connect(str(database)) as db:
        old = pl.concat([scores("race|25", 0, 3), scores("sex|50", 0, 2)])  # noqa: F841
        db.execute("create schema cmrbias; create table cmrbias.scores as select * from old")
    write_rounds(str(database), "race|25", rounds=2, rows=5)
    stored = query(
        database,
        "select experiment, ratio, max(round) r, count(*) n, "
        "(select table_type from information_schema.tables where table_name = 'scores') kind "
        "from cmrbias.scores group by all order by all",
    )
    assert stored.rows() == [("race", 25, 1, 5, "VIEW"), ("sex", 50, 0, 2, "VIEW")]


def test_a_table_never_stored_is_named_and_missing_partitions_are_no_rows(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="table scores"):
        read_partitions(tmp_path, "scores", [tmp_path / "scores" / ROWS_FILE])
    write_rounds(str(tmp_path / "t.duckdb"), "race|25", rounds=1, rows=2)
    folder = tmp_path / "t_partitions"
    empty = read_partitions(folder, "scores", [folder / "scores" / "absent" / ROWS_FILE])
    assert empty.is_empty() and empty.columns == ["experiment", "ratio", "round", "value"]


@pytest.mark.parametrize("relocate", [shutil.move, shutil.copytree], ids=["moved", "copied"])
def test_the_views_follow_a_moved_or_copied_folder_when_it_is_opened(
    tmp_path: Path, relocate: Callable[[Path, Path], object]
) -> None:
    old, new = tmp_path / "old" / "work", tmp_path / "new" / "work"
    for key, rows in (("race|25", 3), ("sex|50", 2)):
        write_rounds(str(old / "tables.duckdb"), key, rounds=1, rows=rows)
    new.parent.mkdir()
    relocate(old, new)
    if old.exists():  # a copy: the original changes afterwards, which the copy must not show
        write_rounds(str(old / "tables.duckdb"), "race|25", rounds=1, rows=7)
    else:
        with pytest.raises(duckdb.IOException, match="No files found"):
            query(new / "tables.duckdb", "select * from cmrbias.scores")

    DuckDBPolarsTables(database=str(new / "tables.duckdb"), schema="cmrbias").create_io_manager(
        None
    )
    stored = query(
        new / "tables.duckdb",
        "select experiment, count(*) n from cmrbias.scores group by all order by all",
    )
    assert stored.rows() == [("race", 3), ("sex", 2)]
    view = query(new / "tables.duckdb", "select sql from duckdb_views() where view_name = 'scores'")
    assert str(new.resolve()) in view["sql"].item() and str(old) not in view["sql"].item()
