"""Bias mitigation while training a fold (docs/mitigation.md): group-balanced oversampling, loss
reweighting and Group DRO as changes to a constructed nnUNetTrainer, each given case id -> group
(and their control, the per-sample loss unweighted: `hooks`); FairSeg's fair error-bound scaling
(`error_bound`); protected models, one training per
group (`protected`), and the routing of test subjects to them (`routing`); heart-region cropping's
boxes and cropped dataset (`cropping`; its cascade of two models is lib.nnunet.cropping_cascade).
The pure numbers live in `group_weights`, the case -> group mapping and its part of the training
stamp in `case_groups`.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.mitigation.case_groups import case_groups, mitigation_stamp
from cmrbias_dagster.lib.nnunet.mitigation.cropping import cropped_environment
from cmrbias_dagster.lib.nnunet.mitigation.error_bound import scale_error_bounds
from cmrbias_dagster.lib.nnunet.mitigation.group_dro import train_with_group_dro
from cmrbias_dagster.lib.nnunet.mitigation.hooks import (
    average_sample_losses,
    oversample_groups,
    reweight_losses,
)
from cmrbias_dagster.lib.nnunet.mitigation.protected import group_environment, train_on_group

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

__all__ = [
    "apply_mitigation",
    "case_groups",
    "mitigation_stamp",
    "model_environments",
]


def apply_mitigation(
    trainer: "nnUNetTrainer", mitigation: Mitigation, groups: Mapping[str, str]
) -> None:
    """Make the constructed trainer train its fold with `mitigation`, each of a combination's
    strategies in turn, given the group of every training case (case_groups; for protected
    models, the cases of the one group it trains on); before run_training, in any order with the
    other hooks. Cropping changes the dataset, not the trainer (lib.nnunet.cropping_cascade)."""
    for strategy in mitigation.strategies:
        if strategy == "oversampling":
            oversample_groups(trainer, groups)
        elif strategy == "reweighting":
            reweight_losses(trainer, groups)
        elif strategy == "group_dro":
            if mitigation.balanced_sampling:
                oversample_groups(trainer, groups)
            train_with_group_dro(trainer, groups, mitigation.group_dro_step)
        elif strategy == "protected_models":
            train_on_group(trainer, groups)
        elif strategy == "per_sample_loss":
            average_sample_losses(trainer)
        elif strategy == "error_bound_scaling":
            scale_error_bounds(trainer, groups, mitigation.error_bound_gamma)


def model_environments(
    env: NnunetEnvironment, mitigation: Mitigation, groups: Sequence[str] = ()
) -> list[NnunetEnvironment]:
    """The results trees a partition of an experiment with `mitigation` trains models in: its own,
    each of `groups`' protected models' or the cropping cascade's second stage's."""
    if mitigation.uses("protected_models"):
        return [env, *(group_environment(env, group) for group in groups)]
    if mitigation.uses("cropping"):
        return [env, cropped_environment(env)]
    return [env]
