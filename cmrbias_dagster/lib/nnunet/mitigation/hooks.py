"""The mitigations as changes to a constructed nnUNetTrainer, given case id -> group.

Each acts on the fold's training cases only, learnt when nnU-Net builds its training dataset, so
a mapping of the whole split (validation fold included) is fine. The loss hooks take over the
train step in place when training starts, whichever other hook (bf16) set it, so the order in
which hooks are applied does not matter. Validation keeps nnU-Net's own loss and sampling.
Use inside a fresh training process (lib.nnunet.isolation), which imports torch.
"""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.nnunet.mitigation.group_weights import (
    balanced_sampling_probabilities,
    inverse_frequency_weights,
)

if TYPE_CHECKING:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

# combine(case ids of the batch, per-sample losses) -> the loss the batch trains with
Combine = Callable[[list[str], "torch.Tensor"], "torch.Tensor"]


def on_training_dataset(trainer: "nnUNetTrainer", listener: Callable[[object], None]) -> None:
    """Hand the fold's training dataset (its `identifiers` are the case ids) to `listener` when
    nnU-Net builds it, at the start of training."""
    datasets = trainer.get_tr_and_val_datasets

    def get_tr_and_val_datasets() -> tuple:
        training, validation = datasets()
        listener(training)
        return training, validation

    trainer.get_tr_and_val_datasets = get_tr_and_val_datasets


def training_cases(dataset: object) -> list[str]:
    """The case ids of an nnU-Net dataset, in its order."""
    return [str(case) for case in dataset.identifiers]  # type: ignore[attr-defined]


def oversample_groups(trainer: "nnUNetTrainer", case_groups: Mapping[str, str]) -> None:
    """nnU-Net's training loader draws cases uniformly; give it sampling probabilities that draw
    each group present equally often (batchgenerators' `sampling_probabilities`). They must be
    set before augmentation workers copy the loader, and nnUNetTrainer.get_dataloaders builds it
    and starts them in one call: the loader class it uses is swapped for that call only."""
    import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as trainer_module

    build_loader, dataloaders = trainer_module.nnUNetDataLoader, trainer.get_dataloaders
    training: list[object] = []

    def remember(dataset: object) -> None:
        training[:] = [dataset]

    on_training_dataset(trainer, remember)

    def loader(data: object, *args: object, **kwargs: object) -> object:
        built = build_loader(data, *args, **kwargs)
        if training and data is training[0]:
            cases = training_cases(data)
            built.sampling_probabilities = balanced_sampling_probabilities(cases, case_groups)
        return built

    def get_dataloaders() -> tuple:
        trainer_module.nnUNetDataLoader = loader
        try:
            return dataloaders()
        finally:
            trainer_module.nnUNetDataLoader = build_loader

    trainer.get_dataloaders = get_dataloaders


def sample_loss(loss: Callable, output: object, target: object, index: int) -> "torch.Tensor":
    """nnU-Net's loss (deep supervision included) of sample `index` of the batch on its own; a
    batch Dice over one sample is that sample's Dice."""
    part = slice(index, index + 1)
    if isinstance(output, list | tuple):
        return loss([o[part] for o in output], [t[part] for t in target])  # type: ignore[union-attr]
    return loss(output[part], target[part])  # type: ignore[index]


def batch_size(output: object) -> int:
    """The number of samples in a network output (deep supervision's list or one tensor)."""
    first = output[0] if isinstance(output, list | tuple) else output
    return int(first.shape[0])  # type: ignore[union-attr]


def per_sample_losses(loss: Callable, output: object, target: object) -> "torch.Tensor":
    """nnU-Net's loss of each sample of the batch on its own (sample_loss), as a 1-D tensor."""
    import torch

    return torch.stack([sample_loss(loss, output, target, i) for i in range(batch_size(output))])


# make(case ids of the batch, nnU-Net's loss) -> the loss function the batch trains with
MakeLoss = Callable[[list[str], Callable], Callable]


def replace_batch_loss(trainer: "nnUNetTrainer", make: MakeLoss) -> None:
    """From the start of training, a training batch's loss is `make(case ids, nnU-Net's loss)`
    instead of nnU-Net's loss; validation keeps nnU-Net's loss."""
    start = trainer.on_train_start

    def on_train_start() -> None:
        start()
        step = trainer.train_step

        def train_step(batch: dict) -> dict:
            plain = trainer.loss
            trainer.loss = make([str(key) for key in batch["keys"]], plain)
            try:
                return step(batch)
            finally:
                trainer.loss = plain

        trainer.train_step = train_step

    trainer.on_train_start = on_train_start


def combine_sample_losses(trainer: "nnUNetTrainer", combine: Combine) -> None:
    """From the start of training, a training batch's loss is `combine(case ids, per-sample
    losses)` instead of nnU-Net's batch loss; validation keeps nnU-Net's loss."""

    def make(keys: list[str], plain: Callable) -> Callable:
        def batch_loss(output: object, target: object) -> "torch.Tensor":
            return combine(keys, per_sample_losses(plain, output, target))

        return batch_loss

    replace_batch_loss(trainer, make)


def reweight_losses(trainer: "nnUNetTrainer", case_groups: Mapping[str, str]) -> dict[str, float]:
    """Weight each case's loss by the inverse frequency of its group in the training fold (mean 1
    over the fold's cases); the returned mapping fills in when training starts."""
    weights: dict[str, float] = {}

    def weigh(dataset: object) -> None:
        weights.update(inverse_frequency_weights(training_cases(dataset), case_groups))

    on_training_dataset(trainer, weigh)

    def weighted_mean(keys: list[str], losses: "torch.Tensor") -> "torch.Tensor":
        import torch

        factors = torch.tensor([weights[key] for key in keys], dtype=losses.dtype)
        return (factors.to(losses.device) * losses).mean()

    combine_sample_losses(trainer, weighted_mean)
    return weights


def average_sample_losses(trainer: "nnUNetTrainer") -> None:
    """The control of reweighting and Group DRO: each case's loss computed on its own, as they do,
    and averaged with every case weighted 1 (nnU-Net's 2d loss takes one Dice over the batch)."""
    combine_sample_losses(trainer, lambda keys, losses: losses.mean())
