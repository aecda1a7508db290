"""nnU-Net's training augmentation with the segmentation resampled by nearest neighbour
(`training: {augmentation: seg_order0}`). nnU-Net's default resamples it, wherever a patch is
rotated or scaled, by interpolating each label's one-hot mask and taking the per-pixel argmax;
nnU-Net's own nnUNetTrainer_DASegOrd0 takes the nearest pixel's label instead, with the same
transforms and parameters otherwise (BENCHMARKS.md, "Augmentation paths"). It is applied to the
constructed trainer, never looked up by name (docs/nnunet_notes.md).
Use inside a fresh training process (lib.nnunet.isolation), which imports torch."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


def resample_segmentation_by_nearest(trainer: "nnUNetTrainer") -> None:
    """Make `trainer` build nnUNetTrainer_DASegOrd0's training transforms: nnU-Net's default with
    `mode_seg='nearest'` in SpatialTransform; call before on_train_start() builds the loaders."""
    from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerDAOrd0 import (
        nnUNetTrainer_DASegOrd0,
    )

    # A staticmethod with the default's signature, so get_dataloaders() calls it with the same
    # arguments; stored on the instance it stays unbound. Its cascade-only transforms differ from
    # the default's (p_per_label), which the pipeline's 2d configuration never uses.
    trainer.get_training_transforms = nnUNetTrainer_DASegOrd0.get_training_transforms
