"""Group DRO (Sagawa et al. 2020) on a constructed nnUNetTrainer: group weights q updated online
from each batch's group losses, and the batch trains with sum_g q_g loss_g. q is written beside
each checkpoint, so a resumed training carries on with the weights it stopped at."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.nnunet.mitigation.group_weights import (
    dro_update,
    groups_of,
    uniform_group_weights,
)
from cmrbias_dagster.lib.nnunet.mitigation.hooks import (
    combine_sample_losses,
    on_training_dataset,
    training_cases,
)

if TYPE_CHECKING:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

WEIGHTS_SUFFIX = ".group_dro.json"  # beside checkpoint_latest.pth, checkpoint_final.pth


@dataclass
class GroupDro:
    """Group DRO's step and its current group weights q (filled in when training starts)."""

    step: float
    weights: dict[str, float] = field(default_factory=dict)

    def batch_loss(self, groups: Sequence[str], losses: "torch.Tensor") -> "torch.Tensor":
        """Update q from the mean loss of each group in the batch, then sum_g q_g loss_g."""
        import torch

        present = sorted(set(groups))
        by_group = {
            group: losses[[i for i, g in enumerate(groups) if g == group]].mean()
            for group in present
        }
        observed = {group: float(loss.detach()) for group, loss in by_group.items()}
        self.weights = dro_update(self.weights, observed, self.step)
        return torch.stack([self.weights[group] * by_group[group] for group in present]).sum()


def train_with_group_dro(
    trainer: "nnUNetTrainer", case_groups: Mapping[str, str], step: float
) -> GroupDro:
    """Train the fold with Group DRO over the groups of its training cases; the returned state
    holds the current weights (uniform at the start of a fresh training)."""
    dro = GroupDro(step)

    def start(dataset: object) -> None:
        saved = Path(trainer.output_folder) / f"checkpoint_latest.pth{WEIGHTS_SUFFIX}"
        if trainer.current_epoch > 0 and saved.is_file():
            dro.weights = json.loads(saved.read_text())
        else:
            dro.weights = uniform_group_weights(groups_of(training_cases(dataset), case_groups))

    on_training_dataset(trainer, start)
    combine_sample_losses(
        trainer, lambda keys, losses: dro.batch_loss(groups_of(keys, case_groups), losses)
    )
    save_checkpoint, end_epoch = trainer.save_checkpoint, trainer.on_epoch_end

    def save_with_weights(filename: str) -> None:
        save_checkpoint(filename)
        if Path(filename).is_file():
            Path(f"{filename}{WEIGHTS_SUFFIX}").write_text(json.dumps(dro.weights))

    def on_epoch_end() -> None:
        trainer.print_to_log_file(f"group DRO weights: {json.dumps(dro.weights)}")
        end_epoch()

    trainer.save_checkpoint = save_with_weights
    trainer.on_epoch_end = on_epoch_end
    return dro
