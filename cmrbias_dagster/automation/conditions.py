"""When each asset is rebuilt, as Declarative Automation conditions; the two sensors that evaluate
them (cohort to splits, running by default; training, stopped); the raw cohort's observation.

`automate` attaches the conditions by asset group, so the asset modules stay free of automation.
"""

from collections.abc import Sequence

import dagster as dg
from dagster import AutomationCondition

# Cheap: the manifest, rejected subjects, Table 1, test sets, training splits and cv folds.
REFRESHED = dg.AssetSelection.groups("cohort", "splits")
# Per experiment x ratio: nnU-Net dataset and plans, fold checkpoints, predictions and metrics.
TRAINED = dg.AssetSelection.groups("nnunet", "training", "evaluation")

NIGHTLY_RETRY_CRON = "0 2 * * *"

# A split re-drawn with the same members and content keeps its data version, hence its models.
split_changed = (
    AutomationCondition.any_deps_match(AutomationCondition.data_version_changed())
    .allow(dg.AssetSelection.assets("training_split"))
    .with_label("training split's data version changed")
)
# The rest of a partition follows its nnU-Net dataset; the cheap parents (cv_folds, test_set),
# re-materialised on every cohort refresh, do not count.
upstream_retrained = (
    AutomationCondition.any_deps_updated().allow(TRAINED).with_label("training parent updated")
)
nightly_retry = (
    AutomationCondition.cron_tick_passed(NIGHTLY_RETRY_CRON, "UTC")
    & (AutomationCondition.missing() | AutomationCondition.execution_failed())
).with_label("02:00 UTC: missing or failed")

# A changed split stays pending until requested: a training that finished in the same tick must
# not cancel it, as an update would under `since_last_handled`.
retrain_trigger = (
    split_changed.since(
        AutomationCondition.newly_requested() | AutomationCondition.initial_evaluation()
    )
    | upstream_retrained.since_last_handled()
    | nightly_retry
)
retrain = (
    retrain_trigger
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("retrain")

CONDITION_BY_GROUP = {
    "cohort": AutomationCondition.eager(),
    "splits": AutomationCondition.eager(),
    "nnunet": retrain,
    "training": retrain,
    "evaluation": retrain,
}


def with_group_condition(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The spec with its group's automation condition, if its group has one."""
    condition = CONDITION_BY_GROUP.get(spec.group_name or "")
    return spec.replace_attributes(automation_condition=condition) if condition else spec


def automate(
    assets: Sequence[dg.AssetsDefinition | dg.SourceAsset],
) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    """The assets with their group's condition; source assets (the raw cohort) are observed by
    `cohort_observation_sensor` instead and pass unchanged."""
    return [
        *dg.map_asset_specs(
            with_group_condition, [a for a in assets if isinstance(a, dg.AssetsDefinition)]
        ),
        *(a for a in assets if not isinstance(a, dg.AssetsDefinition)),
    ]


cohort_sensor = dg.AutomationConditionSensorDefinition(
    "cohort_sensor",
    target=REFRESHED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Eager: when raw_cohort is observed with a new data version, rebuilds the "
    "manifest, rejected subjects and Table 1, then the test sets, then the splits and their "
    "folds, each once its parents are built. It never trains.",
)

training_sensor = dg.AutomationConditionSensorDefinition(
    "training_sensor",
    target=TRAINED,
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Retrains a partition (nnU-Net data, fold checkpoints, predictions, metrics) when "
    "its training_split's data version changes, and at 02:00 UTC retries the partitions whose "
    "training failed or is missing, leaving out those in progress. Stopped by default: training "
    "starts only once you turn it on.",
)

observe_cohort_job = dg.define_asset_job(
    "observe_cohort_job",
    selection=["raw_cohort"],
    description="Observe the raw cohort folder: a new data version when subjects arrive or change.",
)
