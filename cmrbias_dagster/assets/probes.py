"""Attribute probes (docs/probes.md): per experiment, can a classifier tell the two groups apart
from the test set's images, its ground-truth masks, or the encoder features of the experiment's
trained models? And where in the image does the image probe look?"""

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.fold_keys import fold_checkpoint_name
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.partition import partition_key
from cmrbias_dagster.lib.design.settings import ProbeSettings
from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.outputs import export_table, markdown_table, write_atomically
from cmrbias_dagster.lib.plots import figure_names, figure_png
from cmrbias_dagster.lib.plots.probes import saliency_figure
from cmrbias_dagster.lib.plots.subjects import markdown_image
from cmrbias_dagster.lib.probes import attribute_probes as probes
from cmrbias_dagster.lib.probes.data import probe_slices
from cmrbias_dagster.lib.probes.encoder_features import subject_encoder_features
from cmrbias_dagster.lib.probes.saliency import (
    group_saliency,
    read_saliency,
    saliency_bytes,
    share_outside_heart,
)
from cmrbias_dagster.lib.probes.scoring import score_probe
from cmrbias_dagster.resources import StudyResource

PROBE_ASSET_ARGS = {"group_name": "probes"}
ENCODER_FOLD = 0
# The heart mask is dilated by this many pixels before the saliency outside it is summed.
HEART_MARGIN_PX = 2


def encoder_rows(
    study: StudyResource,
    experiment: Experiment,
    subjects: pl.DataFrame,
    labels,
    settings: ProbeSettings,
    ratios: list[int],
    seed: int,
) -> tuple[list[dict], list[str]]:
    """The encoder probe's row for each of `ratios` whose fold-0 model is trained, and the
    partitions whose model is not."""
    files = [
        tuple(row[f"{kind}_{phase}"] for phase in ("ed", "es") for kind in ("image", "label"))
        for row in subjects.sort("subject_id").iter_rows(named=True)
    ]
    rows, missing = [], []
    for ratio in ratios:
        partition = study.partition(partition_key(experiment.name, ratio))
        trainer = trainer_folder(partition.training)
        folder = fold_folder(study.nnunet_environment(), partition.dataset, ENCODER_FOLD, trainer)
        if not (folder / "checkpoint_final.pth").is_file():
            missing.append(partition.key)
            continue
        features = run_in_fresh_process(
            subject_encoder_features, folder.parent, ENCODER_FOLD, files, settings.threads
        )
        scores = probes.feature_probe(features, labels, settings.folds, seed)
        score = score_probe(labels, scores, settings.resamples, seed)
        rows.append(probes.probe_row(experiment.name, "encoder", score, ratio))
    return rows, missing


@dg.asset(
    **PROBE_ASSET_ARGS, kinds={"pytorch", "duckdb"}, deps=[fold_checkpoint_name(ENCODER_FOLD)]
)
def attribute_probes(
    context: dg.AssetExecutionContext,
    subject_manifest: pl.DataFrame,
    test_set: pl.DataFrame,
    study: StudyResource,
) -> dg.Output[pl.DataFrame]:
    """Per experiment, on its test subjects: balanced accuracy and AUC (seeded bootstrap 95 %
    CIs over subjects) of classifiers predicting the group from the images, from the
    ground-truth masks and from the fold-0 encoder features of the models at the profile's
    `probes.encoder_ratios` (those the design has and trained so far); cross-validated with
    folds grouped by subject. Switched off by `probes: {enabled: false}` in the profile."""
    design, settings = study.design(), study.settings().probes
    if not settings.enabled:
        return dg.Output(probes.probe_table([]), metadata={"note": "probes off in the profile"})
    rows, missing, outside = [], [], {}
    ratios, not_in_design = probes.encoder_ratios_in_design(settings.encoder_ratios, design.ratios)
    if not_in_design:
        design_ratios = list(design.ratios)
        context.log.warning(f"encoder probe: {not_in_design} not in the ratios {design_ratios}")
    # Repeats and mitigation variants share their base experiment's test set: probe it once.
    probed: dict[tuple, tuple] = {}
    for experiment in design.experiments:
        subjects = test_set.filter(pl.col("experiment") == experiment.name)
        if subjects.is_empty():
            continue
        located = subjects.join(subject_manifest, on="subject_id", how="left")
        test_subjects = (experiment.groups, tuple(sorted(subjects["subject_id"])))
        if test_subjects not in probed:
            slices = probe_slices(
                subjects, subject_manifest, experiment.groups, settings.image_size
            )
            probed[test_subjects] = (
                slices,
                *probes.image_and_mask_probes(experiment.name, slices, settings, design.seed),
            )
        slices, image_rows, maps = probed[test_subjects]
        image_rows = [{**row, "experiment": experiment.name} for row in image_rows]
        saliency = group_saliency(maps, slices.masks, slices.slice_labels, experiment.groups)
        path = study.output_dir("probes") / f"saliency_{experiment.name}.npz"
        write_atomically(path, saliency_bytes(saliency))
        outside[experiment.name] = share_outside_heart(maps, slices.masks, HEART_MARGIN_PX)
        encoder, not_trained = encoder_rows(
            study, experiment, located, slices.labels, settings, ratios, design.seed
        )
        rows += image_rows + encoder
        missing += not_trained
        context.log.info(f"{experiment.name}: probed {len(slices.labels)} subjects")
    table = probes.probe_table(rows)
    paths = export_table(table, study.tables_folder(), "attribute_probes")
    shares = pl.DataFrame(
        {"experiment": list(outside), "saliency_outside_heart": list(outside.values())}
    )
    return dg.Output(
        table,
        metadata={
            "rows": table.height,
            "probes": dg.MetadataValue.md(markdown_table(table)),
            "saliency_outside_heart": dg.MetadataValue.md(markdown_table(shares)),
            "models_not_trained": ", ".join(missing) or "none",
            "encoder_ratios_not_in_design": ", ".join(map(str, not_in_design)) or "none",
            "csv": dg.MetadataValue.path(str(paths["csv"])),
        },
    )


@dg.asset(**PROBE_ASSET_ARGS, kinds={"matplotlib"}, deps=[attribute_probes])
def probe_saliency(study: StudyResource) -> dg.MaterializeResult:
    """The image probe's held-out Grad-CAM saliency averaged per group, with the groups' mean
    heart outline, one row per experiment."""
    folder = study.output_dir("probes")
    stored = {
        name: read_saliency(folder / f"saliency_{name}.npz")
        for name in study.design().experiment_names
        if (folder / f"saliency_{name}.npz").is_file()
    }
    if not stored:
        raise dg.Failure("no saliency stored: materialise attribute_probes (probes enabled) first")
    png = figure_png(saliency_figure(stored))
    path = write_atomically(study.figure_file(figure_names.PROBE_SALIENCY), png)
    return dg.MaterializeResult(
        metadata={
            "figure": dg.MetadataValue.md(markdown_image(png, figure_names.PROBE_SALIENCY)),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
