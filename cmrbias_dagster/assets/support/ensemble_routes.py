"""How `ensemble_prediction` segments a partition's test cases, by its experiment's mitigation
(docs/mitigation.md): by the partition's folds; routed to each subject's group's protected models;
or through the cropping cascade's two stages. And what the UI shows of the route taken."""

from collections.abc import Callable, Sequence
from functools import partial

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.design.partition import StudyPartition
from cmrbias_dagster.lib.nnunet.cropping_cascade import cascade_summary, predict_cropped_ensemble
from cmrbias_dagster.lib.nnunet.fold_records import trainer_folder
from cmrbias_dagster.lib.nnunet.inference import CasePrediction, predict_ensemble
from cmrbias_dagster.lib.nnunet.mitigation.routing import (
    GroupRouting,
    route_test_subjects,
    trained_group_models,
)
from cmrbias_dagster.resources import StudyResource


def ensemble_predictor(
    study: StudyResource, partition: StudyPartition, test_set: pl.DataFrame, n_folds: int
) -> tuple[Callable[..., list[CasePrediction]], GroupRouting | None]:
    """The prediction function for the partition's experiment (called as `predict_ensemble`
    is), and the routing to protected models where there is one."""
    mitigation, trainer = partition.experiment.mitigation, trainer_folder(partition.training)
    if mitigation.uses("cropping"):
        margin = mitigation.crop_margin_mm
        return partial(predict_cropped_ensemble, trainer=trainer, margin_mm=margin), None
    routing = protected_routing(study, partition, test_set, n_folds)
    routes = routing.cases if routing else None
    return partial(predict_ensemble, trainer=trainer, routes=routes), routing


def protected_routing(
    study: StudyResource, partition: StudyPartition, test_set: pl.DataFrame, n_folds: int
) -> GroupRouting | None:
    """For a protected-models experiment, which group's models segment each test subject (the
    only trained group's, at a ratio that trains one); None for any other experiment."""
    experiment = partition.experiment
    if experiment.mitigation.strategy != "protected_models":
        return None
    env = study.nnunet_environment()
    trainer = trainer_folder(partition.training)
    models = trained_group_models(
        env, partition.dataset, experiment.groups, range(n_folds), trainer
    )
    return route_test_subjects(dict(test_set.select("subject_id", "group").iter_rows()), models)


def routing_metadata(routing: GroupRouting | None) -> dict[str, object]:
    """What the UI shows of the routing to protected models: subjects per model, the fallback."""
    if routing is None:
        return {}
    groups = list(routing.subjects.values())
    return {
        "group_models": dg.MetadataValue.json(sorted(set(groups))),
        "subjects_by_group_model": dg.MetadataValue.json(
            {g: groups.count(g) for g in sorted(set(groups))}
        ),
        "fallback_subjects": dg.MetadataValue.json(routing.fallback),
        "fallback": (
            f"{len(routing.fallback)} subject(s) whose group has no model segmented by the "
            f"{groups[0]} model, the only one trained"
            if routing.fallback
            else "none: every subject segmented by its own group's model"
        ),
    }


def prediction_metadata(
    routing: GroupRouting | None, results: Sequence[CasePrediction]
) -> dict[str, object]:
    """The routing's metadata, and a cropping cascade's boxes (cases without a first-stage heart,
    boxes that cut off part of the true heart, the median box)."""
    if any(result.crop_box is not None for result in results):
        return {
            key: dg.MetadataValue.json(value) for key, value in cascade_summary(results).items()
        }
    return routing_metadata(routing)
