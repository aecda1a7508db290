"""The cluster's Dagster instance (deploy/k8s/dagster.yaml's PostgreSQL storage) against a real,
throwaway PostgreSQL server: a run of the project's cohort job is stored there and read back."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.resources import build_resources
from tests.postgres_server import PostgresServer, postgres_bin_dir, throwaway_postgres
from tests.toy_cohort import demographics_rows, write_toy_cohort

pytestmark = pytest.mark.postgres

SHIPPED_INSTANCE = Path(__file__).parents[1] / "deploy" / "k8s" / "dagster.yaml"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("initdb and pg_ctl are missing: run scripts/system_packages.sh")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with throwaway_postgres(bin_dir) as server:
        yield server


@pytest.fixture
def dagster_home(postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME with the shipped instance, less the run launcher that needs a cluster."""
    for name, value in postgres.environment().items():
        monkeypatch.setenv(name, value)
    shipped = yaml.safe_load(SHIPPED_INSTANCE.read_text())
    home = tmp_path / "dagster_home"
    home.mkdir()
    local = {key: value for key, value in shipped.items() if key != "run_launcher"}
    (home / "dagster.yaml").write_text(yaml.safe_dump(local))
    return home


def stored_rows(server: PostgresServer, query: str) -> list[tuple]:
    """Rows straight from the server, not through Dagster."""
    connection = psycopg2.connect(
        host=server.host, port=server.port, user=server.user, dbname=server.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()
    finally:
        connection.close()


def test_cohort_job_is_stored_in_postgres(
    postgres: PostgresServer, dagster_home: Path, tmp_path: Path
) -> None:
    cohort = write_toy_cohort(tmp_path / "cohort", demographics_rows(2))
    resources = build_resources(profile="tiny", work_dir=tmp_path / "work", cohort_root=cohort)
    job = build_definitions(resources, n_folds=2).resolve_job_def("cohort_job")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        result = job.execute_in_process(instance=instance)
    assert result.success

    runs = stored_rows(postgres, "select run_id, pipeline_name, status from runs")
    assert (result.run_id, "cohort_job", "SUCCESS") in runs
    materialised = stored_rows(
        postgres,
        "select distinct asset_key from event_logs where run_id = "
        f"'{result.run_id}' and dagster_event_type = 'ASSET_MATERIALIZATION'",
    )
    assert {'["subject_manifest"]', '["cohort_characteristics"]'} <= {
        key for (key,) in materialised
    }

    with dg.DagsterInstance.from_config(str(dagster_home)) as reopened:
        assert reopened.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
        (record,) = reopened.fetch_materializations(
            dg.AssetKey("subject_manifest"), limit=1
        ).records
        assert record.run_id == result.run_id
        assert record.asset_materialization.metadata["subjects"].value == 12
        assert reopened.all_instigator_state() == []
