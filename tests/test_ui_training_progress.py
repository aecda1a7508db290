"""Training progress through the real UI: a fold launched from `dagster-webserver` logs each epoch
to the run's event log as it trains, read back over GraphQL as the UI's run view does."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmrbias_dagster.resources.study import PROJECT_ROOT
from tests.conftest import PLANNED_PARTITION
from tests.webserver import Webserver, tiny_study_webserver

pytestmark = pytest.mark.ui

TIMED_MESSAGES_QUERY = """
query RunMessages($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { ... on MessageEvent { message timestamp level } } }
  }
}
"""


@pytest.fixture(scope="module")
def webserver_on_planned_study(
    planned_study, tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webserver]:
    """The tiny study's code location over a copy of the planned partition's nnU-Net data and
    stored partitions (the fold reads its training split; no fold is trained), with an instance
    of its own."""
    root = tmp_path_factory.mktemp("progress_webserver")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", home)
    for part in ("raw", "preprocessed"):
        nnunet = Path("tiny", "nnunet", part)
        shutil.copytree(planned_study.work / nnunet, root / "work" / nnunet)
    partitions = "cmrbias_tiny_partitions"
    shutil.copytree(planned_study.work / partitions, root / "work" / partitions)
    with tiny_study_webserver(root, tiny_cohort, home) as server:
        yield server


def test_a_training_folds_epochs_stream_into_its_run_log(
    webserver_on_planned_study: Webserver,
) -> None:
    server = webserver_on_planned_study
    run_id = server.launch_like_ui(["fold_0_checkpoint"], PLANNED_PARTITION)
    server.wait_for_run(run_id, timeout_s=300)
    events = server.graphql(TIMED_MESSAGES_QUERY, {"runId": run_id})["logsForRun"]["events"]
    epochs = [e for e in events if e.get("message", "").startswith("fold 0 epoch ")]
    assert [e["message"].split(":")[0] for e in epochs] == [
        f"fold 0 epoch {epoch}/3" for epoch in (1, 2, 3)
    ]
    assert all(e["level"] == "INFO" and "ema_pseudo_dice=" in e["message"] for e in epochs)
    # Streamed, not delivered when the process ended: epochs 2 and 3 ran between the first line
    # and the last, so the lines' timestamps lie at least their training time apart.
    later_epochs_s = sum(
        float(e["message"].split("epoch_seconds=")[1].split()[0]) for e in epochs[1:]
    )
    gap_s = (float(epochs[-1]["timestamp"]) - float(epochs[0]["timestamp"])) / 1000
    assert gap_s >= later_epochs_s - 0.2
    metadata = server.latest_metadata("fold_0_checkpoint", PLANNED_PARTITION)
    assert metadata["epochs_run"] == 3
    assert metadata["training_curve"].startswith("![training curve](data:image/png;base64,")
