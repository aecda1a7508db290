"""FairSeg's fair error-bound scaling (FEBS; Tian et al., ICLR 2024, arXiv 2311.02189) on a
constructed nnUNetTrainer. As the official code's `FairDiceLoss` does, each training batch weighs
its groups by their error relative to the best-off group's, w_g = tanh((min_h E_h / E_g) ** gamma)
(group_weights.error_bound_weights), and the Dice term of a case of group g is taken on its
softmax probabilities scaled by w_g, while the cross-entropy is left as it is. With w_g < 1 a case
must predict its structures with more confidence to reach the same Dice, so a group with a higher
error is pushed harder. Adapted to nnU-Net (docs/mitigation.md): E_g is the mean over the group's
cases in the batch of nnU-Net's own loss plus 1 (Dice + CE, deep supervision included; nnU-Net
subtracts the soft Dice, so +1 makes it the error 1 - soft Dice + CE >= 0), and the batch trains
with the mean of its cases' scaled losses."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.nnunet.mitigation.group_weights import error_bound_weights, groups_of
from cmrbias_dagster.lib.nnunet.mitigation.hooks import (
    batch_size,
    per_sample_losses,
    replace_batch_loss,
    sample_loss,
)

if TYPE_CHECKING:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

# nnU-Net's loss is at least -1 (minus a soft Dice in [0, 1], plus a cross-entropy >= 0; deep
# supervision's weights sum to 1): adding this makes it an error bound >= 0.
LOSS_FLOOR = 1.0


def dice_term(loss: Callable) -> object:
    """The soft Dice module inside nnU-Net's loss (under deep supervision's wrapper), whose
    `apply_nonlin` turns logits into the probabilities the Dice is taken on."""
    inner = getattr(loss, "loss", loss)  # DeepSupervisionWrapper holds the loss it weighs
    dice = getattr(inner, "dc", None)
    if dice is None or not hasattr(dice, "apply_nonlin"):
        raise TypeError(f"error-bound scaling needs nnU-Net's Dice + CE loss, got {type(loss)}")
    return dice


@dataclass
class ErrorBoundScaling:
    """FEBS's gamma and the weights of the last training batch (for the log)."""

    gamma: float
    weights: dict[str, float] = field(default_factory=dict)

    def batch_loss(
        self, loss: Callable, groups: list[str], output: object, target: object
    ) -> "torch.Tensor":
        """The batch's FEBS loss: weights from its groups' errors, then the mean over its cases
        of nnU-Net's loss with the Dice on w_g x softmax."""
        import torch

        with torch.no_grad():
            errors = per_sample_losses(loss, output, target) + LOSS_FLOOR
        self.weights = error_bound_weights(
            {g: float(errors[[h == g for h in groups]].mean()) for g in sorted(set(groups))},
            self.gamma,
        )
        dice = dice_term(loss)
        softmax = dice.apply_nonlin  # type: ignore[attr-defined]
        losses = []
        try:
            for index in range(batch_size(output)):
                weight = self.weights[groups[index]]
                dice.apply_nonlin = lambda x, w=weight: w * softmax(x)  # type: ignore[attr-defined]
                losses.append(sample_loss(loss, output, target, index))
        finally:
            dice.apply_nonlin = softmax  # type: ignore[attr-defined]
        return torch.stack(losses).mean()


def scale_error_bounds(
    trainer: "nnUNetTrainer", case_groups: Mapping[str, str], gamma: float
) -> ErrorBoundScaling:
    """Train the fold with fair error-bound scaling over its cases' groups; the returned state
    holds the last batch's group weights, which go to nnU-Net's log each epoch."""
    febs = ErrorBoundScaling(gamma)

    def make(keys: list[str], plain: Callable) -> Callable:
        groups = groups_of(keys, case_groups)
        return lambda output, target: febs.batch_loss(plain, groups, output, target)

    replace_batch_loss(trainer, make)
    end_epoch = trainer.on_epoch_end

    def on_epoch_end() -> None:
        trainer.print_to_log_file(f"error-bound scaling weights (last batch): {febs.weights}")
        end_epoch()

    trainer.on_epoch_end = on_epoch_end
    return febs
