"""One checkpoint asset per cross-validation fold, made by a factory (Dagster allows only two
partition dimensions, experiment x ratio, so folds are assets rather than a third dimension), each
with its `converged` check; and `model_convergence`, every stored fold's verdict in one table."""

from collections.abc import Callable
from functools import partial

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.fold_keys import fold_checkpoint_keys, fold_checkpoint_name
from cmrbias_dagster.assets.support.fold_reports import (
    Trained,
    fold_materialization,
    training_summary,
)
from cmrbias_dagster.executors import TRAINING_POOL, gpu_pod_tags
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.partition import StudyPartition
from cmrbias_dagster.lib.nnunet.convergence import convergence_table, stored_models
from cmrbias_dagster.lib.nnunet.cropping_cascade import train_cropping_cascade
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import trainer_folder
from cmrbias_dagster.lib.nnunet.mitigation import case_groups, model_environments
from cmrbias_dagster.lib.nnunet.training import train_fold, train_group_models
from cmrbias_dagster.lib.outputs import export_table, markdown_table
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import StudyResource, TrainingResource
from cmrbias_dagster.training_progress.process_end import train_reporting_epochs
from cmrbias_dagster.training_progress.step_end import training_progress_channel

# The strategies whose fold trains more than one model: per group, or the cascade's two stages.
MULTI_MODEL_TRAINING = {
    "protected_models": train_group_models,
    "cropping": train_cropping_cascade,
}


def fold_trainer(experiment: Experiment, training_split: pl.DataFrame) -> Callable[..., Trained]:
    """`train_fold` with the experiment's mitigation and the group of each training case (for
    protected models, `train_group_models`; for cropping, alone or combined,
    `train_cropping_cascade`); plain
    `train_fold` for an unmitigated experiment. Each pickles for the fresh training process."""
    mitigation = experiment.mitigation
    if not mitigation.active:
        return train_fold
    # At most one per combination (design.mitigation.combination_refusal).
    several = [MULTI_MODEL_TRAINING[s] for s in mitigation.strategies if s in MULTI_MODEL_TRAINING]
    train = several[0] if several else train_fold
    return partial(train, mitigation=mitigation, case_groups=case_groups(training_split))


def train_with_device(
    context: dg.AssetExecutionContext,
    study: StudyResource,
    training: TrainingResource,
    fold: int,
    training_split: pl.DataFrame,
) -> tuple[Trained, str]:
    """Train a fold in a fresh process, on a leased device slot (the step's log says when it
    waits for one, and which it got), with its experiment's mitigation; each epoch's numbers
    reach the step's log over Pipes."""
    partition = study.partition(context.partition_key)
    train = fold_trainer(partition.experiment, training_split)
    with training_progress_channel(context) as environment:
        return training.run(
            partial(train_reporting_epochs, train),
            study.nnunet_environment(),
            partition.dataset,
            fold,
            partition.training,
            log=context.log.info,
            environment=environment,
        )


def fold_checkpoint(fold: int) -> dg.AssetsDefinition:
    """The asset `fold_<k>_checkpoint`: nnU-Net trained on every fold of the split but fold k."""

    @dg.asset(
        name=fold_checkpoint_name(fold),
        partitions_def=study_partitions,
        group_name="training",
        kinds={"nnunet", "pytorch"},
        deps=["nnunet_plans"],
        pool=TRAINING_POOL,
        op_tags=gpu_pod_tags(),  # one whole GPU per fold pod under the Kubernetes executor
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
        check_specs=[dg.AssetCheckSpec("converged", asset=fold_checkpoint_name(fold))],
        description=f"nnUNetTrainer (CE + Dice, SGD 0.01 Nesterov 0.99, poly schedule, deep "
        f"supervision, default augmentation) trained with fold {fold} held out. Resumes from its "
        "latest checkpoint after an interruption; skipped when inputs and settings are unchanged.",
    )
    def checkpoint(
        context: dg.AssetExecutionContext,
        study: StudyResource,
        training: TrainingResource,
        training_split: pl.DataFrame,
    ) -> dg.MaterializeResult:
        try:
            trained, device = train_with_device(context, study, training, fold, training_split)
        except dg.DagsterExecutionInterruptedError as interrupt:
            # A cancelled run or Ctrl-C must stop, not be retried; the next materialisation resumes.
            raise dg.Failure(f"fold {fold} interrupted", allow_retries=False) from interrupt
        context.log.info(training_summary(fold, trained, device))
        return fold_materialization(trained, device, study.settings().convergence)

    return checkpoint


def fold_checkpoints(n_folds: int) -> list[dg.AssetsDefinition]:
    """One checkpoint asset per fold of the active profile."""
    return [fold_checkpoint(fold) for fold in range(n_folds)]


def model_trees(study: StudyResource, partition: StudyPartition) -> list[NnunetEnvironment]:
    """The results trees the partition's folds train models in (model_environments)."""
    mitigation, groups = partition.experiment.mitigation, partition.experiment.groups
    return model_environments(study.nnunet_environment(), mitigation, groups)


def model_convergence(n_folds: int) -> dg.AssetsDefinition:
    """The asset `model_convergence`: the `converged` verdict of every trained fold on disk."""

    @dg.asset(
        name="model_convergence",
        group_name="analysis",
        kinds={"polars", "duckdb"},
        deps=fold_checkpoint_keys(n_folds),
    )
    def convergence(study: StudyResource) -> dg.Output[pl.DataFrame]:
        """Per experiment, ratio and trained fold: whether its curves reached a plateau (the
        `converged` check), the EMA pseudo-Dice gain and loss drop over the window, the epochs."""
        stored = [
            (partition.experiment.name, partition.ratio, result)
            for partition in study.partitions()
            for result in stored_models(
                model_trees(study, partition),
                partition.dataset,
                range(n_folds),
                trainer_folder(partition.training),
            )
        ]
        table = convergence_table(stored, study.settings().convergence)
        paths = export_table(table, study.tables_folder(), "model_convergence")
        return dg.Output(
            table,
            metadata={
                "rows": table.height,
                "not_converged": table.filter(~pl.col("passed")).height,
                "csv": dg.MetadataValue.path(str(paths["csv"])),
                "latex": dg.MetadataValue.path(str(paths["latex"])),
                "preview": dg.MetadataValue.md(markdown_table(table.drop("reason"))),
            },
        )

    return convergence
