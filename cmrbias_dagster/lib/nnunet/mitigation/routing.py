"""Protected models (docs/mitigation.md): one model per group, each test subject segmented by the
model of its own group; at ratio 0 or 100 % the one group with a model segments every subject."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cmrbias_dagster.lib.cohort.validation import PHASES
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import FINAL_CHECKPOINT, fold_folder
from cmrbias_dagster.lib.nnunet.mitigation.protected import group_environment
from cmrbias_dagster.lib.splits.folds import case_id


class MissingGroupModelError(KeyError):
    """A test subject whose group has no model of its own and no fallback was allowed."""


def route_to_group_models(
    subject_groups: Mapping[str, str],
    group_models: Mapping[str, str],
    fallback: str | None = None,
) -> dict[str, str]:
    """Subject id -> the model (e.g. a fold folder) that segments it: its group's model, else
    `fallback` (the model of the only group trained at ratio 0 or 100), else an error naming
    the subjects left without one."""
    unrouted = sorted(s for s, g in subject_groups.items() if g not in group_models)
    if unrouted and fallback is None:
        groups = sorted({subject_groups[subject] for subject in unrouted})
        raise MissingGroupModelError(
            f"no model for group(s) {groups} of test subject(s) {unrouted[:10]}; models exist "
            f"for {sorted(group_models)}"
        )
    return {
        subject: group_models.get(group, fallback)  # type: ignore[misc]
        for subject, group in subject_groups.items()
    }


def trained_group_models(
    env: NnunetEnvironment,
    dataset: str,
    groups: Sequence[str],
    folds: Sequence[int],
    trainer: str,
) -> dict[str, Path]:
    """Group -> trainer folder (`trainer`, fold_records.trainer_folder), for the groups whose
    protected model has a final checkpoint in every one of `folds` (a group with too few
    subjects to train in each fold has none)."""
    trees = {group: group_environment(env, group) for group in groups}
    return {
        group: tree.results / dataset / trainer
        for group, tree in trees.items()
        if all(
            (fold_folder(tree, dataset, fold, trainer) / FINAL_CHECKPOINT).is_file()
            for fold in folds
        )
    }


@dataclass(frozen=True)
class GroupRouting:
    """Which protected model segments each test subject, and each of its cases."""

    subjects: dict[str, str]  # subject id -> the group whose model segments it
    cases: dict[str, Path]  # case id -> that model's trainer folder
    fallback: list[str]  # subjects whose own group has no model, segmented by the only one


def route_test_subjects(
    subject_groups: Mapping[str, str],
    group_models: Mapping[str, Path],
    phases: Sequence[str] = PHASES,
) -> GroupRouting:
    """Each subject (and its cases) to its group's model; when a single group has a model (ratio
    0 or 100 %), that model segments the subjects of the others, listed as `fallback`."""
    if not group_models:
        raise MissingGroupModelError("no group has a protected model trained in every fold")
    only = next(iter(group_models)) if len(group_models) == 1 else None
    routed = route_to_group_models(subject_groups, {g: g for g in group_models}, only)
    return GroupRouting(
        subjects=routed,
        cases={
            case_id(subject, phase): group_models[group]
            for subject, group in routed.items()
            for phase in phases
        },
        fallback=sorted(s for s, g in routed.items() if subject_groups[s] != g),
    )
