"""The Dagster code location: every asset, check, job and resource of the study."""

import os
from pathlib import Path

import dagster as dg

from cmrbias_dagster import pool_wait
from cmrbias_dagster.assets import (
    analysis,
    beyond_the_paper,
    cohort,
    external_analysis,
    figures,
    nnunet,
    probes,
    report,
    splits,
)
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.external import external_assets
from cmrbias_dagster.assets.training import fold_checkpoints, model_convergence
from cmrbias_dagster.automation import (
    automate,
    cohort_observation_sensor,
    cohort_sensor,
    observe_cohort_job,
    training_sensor,
)
from cmrbias_dagster.executors import executor_from_environment
from cmrbias_dagster.partitions import (
    STUDY_DESIGN,
    study_file,
)
from cmrbias_dagster.resources import build_resources

PROFILE = os.environ.get("CMRBIAS_PROFILE", "quick")
# Every process that executes runs of this code location loads it: there a step waiting for the
# training pool sleeps instead of spinning a core (pool_wait.py).
pool_wait.install()

cohort_job = dg.define_asset_job(
    "cohort_job",
    selection=dg.AssetSelection.groups("cohort"),
    description="Validate the raw cohort into the subject manifest and Table 1.",
)

experiment_job = dg.define_asset_job(
    "experiment_job",
    selection=dg.AssetSelection.assets("test_set"),
    description="Draw each experiment's fixed test set.",
)

partition_job = dg.define_asset_job(
    "partition_job",
    selection=dg.AssetSelection.groups("splits", "nnunet", "training", "evaluation")
    - dg.AssetSelection.assets("test_set"),
    description="Per experiment x ratio: split, folds, nnU-Net data, fold checkpoints, evaluation.",
)

analysis_job = dg.define_asset_job(
    "analysis_job",
    selection=dg.AssetSelection.groups("analysis", "figures", "report", "probes"),
    description="Tables, statistics, figures, attribute probes and the study report over every "
    "evaluated partition.",
)


def build_definitions(
    resources: dict[str, object], n_folds: int, executor: dg.ExecutorDefinition | None = None
) -> dg.Definitions:
    """The whole study for one profile's resources and its trained folds; `executor` None keeps
    Dagster's default (local processes)."""
    # Only a design with `external_test` has the external cohorts' assets, and only then does the
    # report wait for them: a study without one is unchanged.
    external = bool(resources["study"].design().external_test)
    return dg.Definitions(
        assets=[
            *automate(
                [
                    *dg.load_assets_from_modules([cohort, splits, nnunet]),
                    *fold_checkpoints(n_folds),
                    *evaluation_assets(n_folds),
                ]
            ),
            model_convergence(n_folds),
            *dg.load_assets_from_modules([analysis, beyond_the_paper, figures]),
            report.study_report_asset(external_cohorts=external),
            *(external_assets(n_folds) if external else []),
            *(dg.load_assets_from_modules([external_analysis]) if external else []),
            *dg.load_assets_from_modules([probes]),
        ],
        asset_checks=dg.load_asset_checks_from_modules([cohort]),
        jobs=[observe_cohort_job, cohort_job, experiment_job, partition_job, analysis_job],
        sensors=[cohort_observation_sensor, cohort_sensor, training_sensor],
        resources=resources,
        executor=executor,
    )


def resources_from_environment() -> dict[str, object]:
    """Resources for the profile named by CMRBIAS_PROFILE; CMRBIAS_WORK_DIR and
    CMRBIAS_COHORT_ROOT move the outputs and the raw cohort (defaults under data/)."""
    work_dir = os.environ.get("CMRBIAS_WORK_DIR")
    cohort_root = os.environ.get("CMRBIAS_COHORT_ROOT")
    return build_resources(
        profile=PROFILE,
        study_file=study_file(),
        **({"work_dir": Path(work_dir)} if work_dir else {}),
        cohort_root=Path(cohort_root) if cohort_root else None,
    )


defs = build_definitions(
    resources_from_environment(),
    STUDY_DESIGN.profile(PROFILE).trained_folds,
    executor_from_environment(),
)
