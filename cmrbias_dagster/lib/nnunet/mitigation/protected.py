"""Protected models (Puyol-Antón et al. 2021; docs/mitigation.md): per fold, one nnU-Net model per
group, trained on the fold's cases of that group only. Each group's models live in a results tree
of their own (results/protected_models/<group>/, laid out as nnU-Net's), so fold folders, stamps,
resuming and twins work for them as for any fold."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.plans import SPLITS_FILE

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

GROUP_MODELS_FOLDER = "protected_models"


def group_environment(env: NnunetEnvironment, group: str) -> NnunetEnvironment:
    """nnU-Net's roots for `group`'s models: the partition's raw and preprocessed data, results
    under results/protected_models/<group>/."""
    return replace(env, results=env.results / GROUP_MODELS_FOLDER / group)


def read_splits(env: NnunetEnvironment, dataset: str) -> list[dict[str, list[str]]]:
    """The dataset's splits_final.json: per fold, its `train` and `val` case ids."""
    return json.loads((env.preprocessed / dataset / SPLITS_FILE).read_text())


def fold_training_groups(
    splits: Sequence[Mapping[str, Sequence[str]]], fold: int, case_groups: Mapping[str, str]
) -> list[str]:
    """The groups with training cases in `fold` of nnU-Net's splits, sorted: one model each."""
    if not 0 <= fold < len(splits):
        raise ValueError(f"fold {fold} is not in splits of {len(splits)} folds")
    unknown = [case for case in splits[fold]["train"] if case not in case_groups]
    if unknown:
        raise ValueError(f"fold {fold}: training cases without a group, e.g. {unknown[:5]}")
    return sorted({case_groups[case] for case in splits[fold]["train"]})


def cases_of_group(case_groups: Mapping[str, str], group: str) -> dict[str, str]:
    """The part of case id -> group that maps to `group`: what one protected model trains on."""
    return {case: g for case, g in case_groups.items() if g == group}


def train_on_group(trainer: "nnUNetTrainer", case_groups: Mapping[str, str]) -> None:
    """Make the trainer's fold one group's (`case_groups` maps one group's cases): nnU-Net's split
    restricted to those cases; validation on the group's validation cases, or on the whole
    validation fold when it holds none (it steers no weight: the final checkpoint is kept)."""
    groups = sorted(set(case_groups.values()))
    if len(groups) != 1:
        raise ValueError(
            f"a protected model trains on one group's cases; the mapping holds groups {groups}"
        )
    split = trainer.do_split

    def do_split() -> tuple[list[str], list[str]]:
        training, validation = split()
        own = [case for case in training if case in case_groups]
        own_validation = [case for case in validation if case in case_groups] or list(validation)
        trainer.print_to_log_file(
            f"protected model of group {groups[0]}: {len(own)} training and "
            f"{len(own_validation)} validation cases"
        )
        return own, own_validation

    trainer.do_split = do_split


def group_models_stamp(stamps: Mapping[str, str]) -> str:
    """One data version for a fold's protected models: a hash of each group's training stamp."""
    content = json.dumps(sorted(stamps.items())).encode()
    return hashlib.sha256(content).hexdigest()[:16]
