"""Study design assets: the fixed test set, the training split per ratio, and the folds."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.outputs import markdown_table, table_version
from cmrbias_dagster.lib.splits import checks as split_checks
from cmrbias_dagster.lib.splits.folds import assign_folds, nnunet_splits
from cmrbias_dagster.lib.splits.sampling import draw_test_set, draw_training_split
from cmrbias_dagster.partitions import experiment_partitions, study_partitions
from cmrbias_dagster.resources import StudyResource

STUDY_PARTITION_COLUMNS = {"partition_expr": {"experiment": "experiment", "ratio": "ratio"}}


def _versioned(drawn: pl.DataFrame, manifest: pl.DataFrame) -> dg.DataVersion:
    """Version = the drawn subjects and their content: unchanged draws keep downstream fresh."""
    hashed = drawn.join(manifest.select("subject_id", "content_hash"), on="subject_id")
    return dg.DataVersion(table_version(hashed, ["subject_id", "group", "held", "content_hash"]))


@dg.asset(
    partitions_def=experiment_partitions,
    group_name="splits",
    kinds={"polars", "duckdb"},
    metadata={"partition_expr": "experiment"},
    check_specs=[dg.AssetCheckSpec("test_set_balanced", asset="test_set", blocking=True)],
)
def test_set(
    context: dg.AssetExecutionContext, subject_manifest: pl.DataFrame, study: StudyResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The fixed test set of an experiment: 50/50 on the attribute and on the held attribute (if
    any), drawn first."""
    design, settings = study.design(), study.settings()
    experiment = design.experiment(context.partition_key)
    drawn = draw_test_set(subject_manifest, experiment, settings.test_size, design.seed)
    counts = split_checks.stratum_table(drawn)
    yield dg.MaterializeResult(
        value=drawn,
        data_version=_versioned(drawn, subject_manifest),
        metadata={
            "subjects": drawn.height,
            "counts": dg.MetadataValue.md(markdown_table(counts)),
        },
    )
    yield dg.AssetCheckResult(
        check_name="test_set_balanced",
        passed=split_checks.is_balanced(drawn, experiment),
        metadata={"counts": dg.MetadataValue.md(markdown_table(counts))},
    )


@dg.asset(
    partitions_def=study_partitions,
    group_name="splits",
    kinds={"polars", "duckdb"},
    metadata=STUDY_PARTITION_COLUMNS,
    check_specs=[
        dg.AssetCheckSpec("ratio_and_balance_exact", asset="training_split", blocking=True),
        dg.AssetCheckSpec("disjoint_from_test_set", asset="training_split", blocking=True),
    ],
)
def training_split(
    context: dg.AssetExecutionContext,
    subject_manifest: pl.DataFrame,
    test_set: pl.DataFrame,
    study: StudyResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The training subjects at one ratio: exact group counts, held attribute (if any) 50/50 per
    group."""
    settings, partition = study.settings(), study.partition(context.partition_key)
    experiment, ratio = partition.experiment, partition.ratio
    drawn = draw_training_split(
        subject_manifest,
        test_set["subject_id"],
        experiment,
        ratio,
        settings.train_size,
        partition.draw_seed,  # the design seed; repeat r > 1 draws with its own
    )
    mismatches = split_checks.count_mismatches(drawn, experiment, ratio, settings.train_size)
    shared = split_checks.overlap(drawn, test_set)
    yield dg.MaterializeResult(
        value=drawn,
        data_version=_versioned(drawn, subject_manifest),
        metadata={
            "subjects": drawn.height,
            "counts": dg.MetadataValue.md(markdown_table(split_checks.stratum_table(drawn))),
        },
    )
    yield dg.AssetCheckResult(
        check_name="ratio_and_balance_exact",
        passed=not mismatches,
        metadata={"mismatches": "; ".join(mismatches) or "none"},
    )
    yield dg.AssetCheckResult(
        check_name="disjoint_from_test_set",
        passed=not shared,
        metadata={"shared_subjects": ", ".join(shared) or "none"},
    )


@dg.asset(
    partitions_def=study_partitions,
    group_name="splits",
    kinds={"polars", "duckdb"},
    metadata=STUDY_PARTITION_COLUMNS,
    check_specs=[dg.AssetCheckSpec("folds_grouped_by_subject", asset="cv_folds", blocking=True)],
)
def cv_folds(
    context: dg.AssetExecutionContext, training_split: pl.DataFrame, study: StudyResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Cross-validation folds grouped by subject (ED and ES together), stratified by group and
    held value (by group alone when nothing is held). The profile's first `trained_folds` are
    trained and ensembled."""
    settings = study.settings()
    draw_seed = study.partition(context.partition_key).draw_seed
    folds = assign_folds(training_split, settings.folds, draw_seed)
    problems = split_checks.fold_problems(folds, nnunet_splits(folds))
    per_fold = folds.group_by("fold", "group").len("subjects").sort("fold", "group")
    yield dg.MaterializeResult(
        value=folds,
        data_version=dg.DataVersion(table_version(folds, ["subject_id", "fold"])),
        metadata={
            "folds": settings.folds,
            "trained_folds": settings.trained_folds,
            "per_fold": dg.MetadataValue.md(markdown_table(per_fold)),
        },
    )
    yield dg.AssetCheckResult(
        check_name="folds_grouped_by_subject",
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none"},
    )
