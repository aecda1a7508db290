"""End to end through the real UI: `dagster-webserver` on the tiny profile, driven over GraphQL
as its Materialize button does; its asset graph, and the study report one click from its asset
page, rendered by headless Chromium."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import numpy as np
import pytest
from matplotlib import image

from cmrbias_dagster.assets import analysis, beyond_the_paper, figures, report
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.training import model_convergence
from cmrbias_dagster.lib.report.markdown import MARKDOWN_BUDGET
from cmrbias_dagster.resources.study import PROJECT_ROOT
from tests.browser import CHROMIUM_FLAGS, chromium_page
from tests.conftest import FOLD_ASSETS
from tests.webserver import Webserver, tiny_study_webserver

pytestmark = pytest.mark.ui

PARTITION = "race_black|25"
CHROMIUM = "chromium"
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
ANALYSIS_TABLES = [
    "cohort_characteristics",
    "median_dsc_table",
    "intersectional_dsc_table",
    "clinical_difference_table",
    "group_comparisons",
    "ratio_comparisons",
    "fairness_table",
    "ratio_dependence_table",
    "gap_verdicts",
    "model_convergence",
]
# The dialog the UI's [Show Markdown] opens for a Markdown metadata entry.
DIALOG = "document.querySelector('[role=dialog]')"


@pytest.fixture(scope="module")
def webserver_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DAGSTER_HOME of the webserver's instance (SQLite), which tests may also write runs to."""
    home = tmp_path_factory.mktemp("webserver") / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", home)
    return home


@pytest.fixture(scope="module")
def webserver(tiny_cohort: Path, webserver_home: Path) -> Iterator[Webserver]:
    """The study's code location on the tiny profile, served with an instance of its own."""
    with tiny_study_webserver(webserver_home.parent, tiny_cohort, webserver_home) as server:
        yield server


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
            "--virtual-time-budget=15000",
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


@pytest.fixture(scope="module")
def reported(webserver_home: Path, planned_study, evaluated) -> dg.ExecuteInProcessResult:
    """The tables, figures and `study_report` of the evaluated tiny partition, materialised into
    the webserver's instance (training in the webserver would repeat the session's fixtures)."""
    assets = [
        *planned_study.assets,
        *FOLD_ASSETS,
        *evaluation_assets(2),
        model_convergence(2),
        *dg.load_assets_from_modules([analysis, beyond_the_paper, figures]),
        report.study_report_asset(external_cohorts=False),
    ]
    selection = ["subject_scores", *ANALYSIS_TABLES, *report.FIGURE_ASSETS, "study_report"]
    with dg.DagsterInstance.from_config(str(webserver_home)) as instance:
        return dg.materialize(
            assets, selection=selection, resources=planned_study.resources, instance=instance
        )


def test_ui_shows_the_study_report_one_click_from_its_asset_page(
    webserver: Webserver, reported: dg.ExecuteInProcessResult, tmp_path: Path
) -> None:
    markdown = (
        reported.asset_materializations_for_node("study_report")[0]
        .metadata["report_markdown"]
        .value
    )
    figure_count = markdown.count("](data:image/png;base64,")
    assert figure_count >= len(report.FIGURE_ASSETS)
    assert len(markdown) < MARKDOWN_BUDGET
    webserver.dismiss_community_dialog()

    with chromium_page(CHROMIUM, tmp_path / "profile") as page:
        page.open(f"{webserver.url}/assets/study_report")
        page.wait_for("document.body.innerText.includes('report_markdown')", timeout_s=90)
        page.evaluate(
            "[...document.querySelectorAll('tr')]"
            ".find(row => row.innerText.startsWith('report_markdown'))"
            ".querySelector('a').click()"  # its [Show Markdown]
        )
        page.wait_for(f"{DIALOG} && {DIALOG}.querySelectorAll('h2').length >= 10")
        page.wait_for(f"[...{DIALOG}.querySelectorAll('img')].every(i => i.complete)")
        shown = page.evaluate(f"{DIALOG}.innerText")
        headers = page.evaluate(f"[...{DIALOG}.querySelectorAll('th')].map(h => h.innerText)")
        pictures = page.evaluate(
            f"[...{DIALOG}.querySelectorAll('img')].map(i => [i.alt, i.naturalWidth])"
        )
        page.evaluate(f"{DIALOG}.querySelector('h1').scrollIntoView()")
        screenshot = page.screenshot(tmp_path / "study_report.png")

    assert "Demographic bias in nnU-Net CMR segmentation" in shown
    assert "race_black: black median DSC" in shown  # escaped in Markdown, plain on the page
    assert "Median DSC (Table 2)" in shown and "Provenance" in shown
    assert {"trained_folds", "median_dsc", "stars", "p_holm"} <= set(headers)
    assert len(pictures) == figure_count
    assert all(width > 0 for _, width in pictures), pictures  # each data URI decoded
    assert "fig2_dsc_by_ratio" in {alt for alt, _ in pictures}
    pixels = image.imread(screenshot)
    assert pixels.shape[1] == 1600 and pixels[..., :3].std() > 0.05
