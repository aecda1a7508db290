"""End to end through the real UI: `dagster-webserver` on the tiny profile, driven over GraphQL
as its Materialize button does, and its asset graph rendered by headless Chromium."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from matplotlib import image

from cmrbias_dagster.resources.study import PROJECT_ROOT
from tests.webserver import Webserver, start_webserver

pytestmark = pytest.mark.ui

PARTITION = "race_black|25"
CHROMIUM = "chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--virtual-time-budget=15000",
]
STUDY_ASSETS = {
    "raw_cohort",
    "subject_manifest",
    "rejected_subjects",
    "cohort_characteristics",
    "test_set",
    "training_split",
    "cv_folds",
    "nnunet_dataset",
    "nnunet_plans",
    "fold_0_checkpoint",
    "fold_1_checkpoint",
    "ensemble_prediction",
    "segmentation_metrics",
    "clinical_measures",
}
ASSET_NODES_QUERY = "{ assetNodes { assetKey { path } groupName } }"
PARTITION_KEYS_QUERY = """
query PartitionKeys($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { partitionKeys } }
}
"""


@pytest.fixture(scope="module")
def webserver(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    """The study's code location on the tiny profile, served with an instance of its own."""
    root = tmp_path_factory.mktemp("webserver")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", home)
    env = {
        "CMRBIAS_PROFILE": "tiny",
        "CMRBIAS_WORK_DIR": str(root / "work"),
        "CMRBIAS_COHORT_ROOT": str(tiny_cohort),
        "DAGSTER_HOME": str(home),
    }
    server = start_webserver("cmrbias_dagster.definitions", env, root / "webserver.log")
    try:
        server.wait_until_loaded(timeout_s=120)
        yield server
    finally:
        server.stop()


def test_ui_lists_the_study_and_materializes_a_partition(webserver: Webserver) -> None:
    nodes = webserver.graphql(ASSET_NODES_QUERY)["assetNodes"]
    names = {"/".join(node["assetKey"]["path"]) for node in nodes}
    assert names >= STUDY_ASSETS
    assert "fold_2_checkpoint" not in names  # the tiny profile trains 2 folds
    keys = webserver.graphql(PARTITION_KEYS_QUERY, {"key": {"path": ["training_split"]}})
    partition_keys = keys["assetNodeOrError"]["partitionKeys"]
    assert len(partition_keys) == 15 and PARTITION in partition_keys

    webserver.wait_for_run(webserver.launch_like_ui(["subject_manifest", "rejected_subjects"]), 60)
    webserver.wait_for_run(webserver.launch_like_ui(["test_set"], "race_black"), 60)
    split_run_id = webserver.launch_like_ui(["training_split", "cv_folds"], PARTITION)
    split_run = webserver.wait_for_run(split_run_id, 60)

    tags = {tag["key"]: tag["value"] for tag in split_run["tags"]}
    assert tags["dagster/partition"] == PARTITION
    assert tags["dagster/partition/experiment"] == "race_black"
    assert tags["dagster/partition/ratio"] == "25"
    checks = {
        event["evaluation"]["checkName"]: event["evaluation"]["success"]
        for event in webserver.run_events(split_run_id)
        if event["__typename"] == "AssetCheckEvaluationEvent"
    }
    assert checks == {
        "ratio_and_balance_exact": True,
        "disjoint_from_test_set": True,
        "folds_grouped_by_subject": True,
    }
    assert webserver.latest_metadata("subject_manifest")["subjects"] == 36
    assert webserver.latest_metadata("test_set", "race_black")["subjects"] == 8
    split = webserver.latest_metadata("training_split", PARTITION)
    assert split["subjects"] == 8  # the tiny profile's train_size
    # 25% black: 2 black and 6 white subjects, each half female and half male.
    for row in ("| black | female | 1 |", "| black | male | 1 |", "| white | female | 3 |"):
        assert row in split["counts"]
    assert webserver.latest_metadata("cv_folds", PARTITION)["folds"] == 2


def test_ui_renders_the_asset_graph_in_a_browser(webserver: Webserver, tmp_path: Path) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium not found: run scripts/system_packages.sh (as root) or `make test`")
    webserver.dismiss_community_dialog()
    repository = quote(f"{webserver.repository}@{webserver.location}", safe="@")
    page = f"{webserver.url}/locations/{repository}/asset-groups/splits"
    screenshot = tmp_path / "asset_graph.png"
    browser = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert browser.returncode == 0, browser.stderr[-3000:]

    for name in ("subject_manifest", "test_set", "training_split", "cv_folds"):
        assert name in browser.stdout, f"{name} not in the DOM of {page}"
    pixels = image.imread(screenshot)
    assert pixels.shape[:2] == (1000, 1600)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 50 and pixels[..., :3].std() > 0.02
