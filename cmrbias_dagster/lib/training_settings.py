"""How a profile trains nnU-Net folds (epochs, iterations, checkpointing), from data/study.yaml."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from cmrbias_dagster.lib.settings_blocks import check_optional_count, settings_from_mapping

# How the work is spread over processes and threads, not what is trained: left out of the stamp.
NOT_FINGERPRINTED = ("augmentation_workers", "threads")


@dataclass(frozen=True)
class TrainingSettings:
    """nnUNetTrainer's schedule; the defaults are the paper's (500 epochs x 250 iterations)."""

    epochs: int = 500
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int = 50
    save_every: int = 50  # epochs between resumable checkpoints
    final_validation: bool = True  # nnU-Net's full validation of the fold: real Dice per class
    augmentation_workers: int | None = None  # nnUNet_n_proc_DA; 0 = augment in-process (small CPUs)
    threads: int | None = None  # torch threads of the training process; None: torch's default

    def __post_init__(self) -> None:
        for name in ("epochs", "iterations_per_epoch", "val_iterations_per_epoch", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"training setting {name!r} must be a positive integer, got {value!r}"
                )
        check_optional_count(self.augmentation_workers, 0, "augmentation_workers", "training")
        check_optional_count(self.threads, 1, "threads", "training")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "TrainingSettings":
        """From a profile's `training:` block in data/study.yaml; unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "training")

    def fingerprint(self) -> str:
        """A hash of the settings that change what is trained (not of how many processes and
        threads do the work)."""
        relevant = {k: v for k, v in asdict(self).items() if k not in NOT_FINGERPRINTED}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
