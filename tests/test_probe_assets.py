"""The probe assets on the tiny study's trained partition (race_black|25): the encoder features of
its fold-0 model, the probe table in DuckDB and CSV, the saliency figure and the report section."""

from types import SimpleNamespace

import dagster as dg
import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.assets import probes
from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.probes.attribute_probes import (
    SCHEMA,
    encoder_ratios_in_design,
    feature_probe,
)
from cmrbias_dagster.lib.probes.encoder_features import subject_encoder_features
from cmrbias_dagster.lib.report.outline import attribute_probes_section
from tests.conftest import FOLD_ASSETS, PLANNED_PARTITION

PHASE_FILES = ("sa_ED.nii.gz", "label_sa_ED.nii.gz", "sa_ES.nii.gz", "label_sa_ES.nii.gz")
TINY_BOTTLENECK = 16  # the tiny profile's features_per_stage [4, 8, 16]


@pytest.fixture(scope="module")
def probed(planned_study, trained_study):
    return dg.materialize(
        [*planned_study.assets, *FOLD_ASSETS, *dg.load_assets_from_modules([probes])],
        selection=["attribute_probes", "probe_saliency"],
        resources=planned_study.resources,
        instance=planned_study.instance,
    )


def test_encoder_features_of_the_trained_model(tiny_cohort, planned_study, trained_study):
    study = planned_study.resources["study"]
    partition = study.partition(PLANNED_PARTITION)
    trainer = trainer_folder(partition.training)
    folder = fold_folder(study.nnunet_environment(), partition.dataset, 0, trainer)
    subjects = planned_study.result.output_for_node("training_split").sort("subject_id")
    files = [
        tuple(tiny_cohort / subject / name for name in PHASE_FILES)
        for subject in subjects["subject_id"]
    ]
    features = subject_encoder_features(folder.parent, 0, files)
    assert features.shape == (subjects.height, TINY_BOTTLENECK)
    assert np.isfinite(features).all() and features.std(axis=0).max() > 0
    labels = (subjects["group"] == "black").to_numpy().astype(int)
    scores = feature_probe(features, labels, 2, seed=1)
    assert scores.shape == labels.shape and ((scores >= 0) & (scores <= 1)).all()


def test_probe_table_figure_and_report_section(probed, planned_study):
    table = probed.output_for_node("attribute_probes")
    assert dict(table.schema) == SCHEMA
    # Only race_black has a test set in the planned study; only its ratio-25 model is trained.
    assert table["experiment"].unique().to_list() == ["race_black"]
    assert table["probe"].to_list() == ["images", "masks", "encoder"]
    assert table["model_ratio"].to_list() == [None, None, 25]
    assert table["subjects"].to_list() == [8, 8, 8]
    metadata = probed.asset_materializations_for_node("attribute_probes")[0].metadata
    assert metadata["encoder_ratios_not_in_design"].value == "none"
    for low, value, high in table.select("auc_low", "auc", "auc_high").iter_rows():
        assert 0 <= low <= value <= high <= 1
    study = planned_study.resources["study"]
    exported = pl.read_csv(study.tables_folder() / "attribute_probes.csv", schema=SCHEMA)
    assert exported.equals(table)
    figure = study.figure_file(figure_names.PROBE_SALIENCY)
    assert figure.read_bytes().startswith(b"\x89PNG")
    inputs = SimpleNamespace(
        tables=SimpleNamespace(attribute_probes=table),
        figures_named=lambda *names: [(name, figure.read_bytes()) for name in names],
    )
    section = attribute_probes_section(inputs)
    assert (
        section.heading == "Attribute probes"
        and section.figures[0][0] == figure_names.PROBE_SALIENCY
    )
    inputs.tables.attribute_probes = table.clear()
    assert attribute_probes_section(inputs) is None


def test_the_encoder_probe_reads_only_the_ratios_the_design_trains() -> None:
    # The quick profile probes 0 and 100 %; the mitigation designs train 0 and 25 % only.
    assert encoder_ratios_in_design((0, 100), (0, 25)) == ([0], [100])
    assert encoder_ratios_in_design((0, 50, 100), (0, 25, 50, 75, 100)) == ([0, 50, 100], [])
