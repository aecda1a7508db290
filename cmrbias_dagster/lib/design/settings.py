"""The typed blocks of a profile in data/study.yaml: `nnunet` (plan edits), `training`,
`convergence`, `prediction` and `synthetic_cohort`. Unknown keys are refused by name when the
design is parsed."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from cmrbias_dagster.lib.design.fields import check_optional_count, settings_from_mapping

# How the work is spread over processes and threads, not what is trained: left out of the stamp.
NOT_FINGERPRINTED = ("augmentation_workers", "threads")
OPTIMIZERS = ("sgd", "adamw")
AUGMENTATIONS = ("default", "seg_order0")  # lib.nnunet.augmentation


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
    # bfloat16 autocast and channels-last on a CPU with native bf16 (AVX512-BF16/AMX); fp32 on
    # other CPUs. CUDA keeps nnU-Net's own mixed precision either way.
    cpu_bf16: bool = False
    # nnU-Net's SGD (Nesterov 0.99) or AdamW (amsgrad, as nnUNetTrainerAdam), both with its poly
    # schedule from `initial_lr` (None: nnU-Net's 0.01).
    optimizer: str = "sgd"
    initial_lr: float | None = None
    # nnU-Net's training augmentation, or the same with the segmentation resampled by nearest
    # neighbour instead of interpolated one-hot masks (nnUNetTrainer_DASegOrd0; cheaper on a CPU).
    augmentation: str = "default"
    # Seeds Python's, NumPy's and torch's generators (plus the fold number) before the trainer is
    # built; the fold assets set it to the design's seed. None: unseeded.
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "iterations_per_epoch", "val_iterations_per_epoch", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"training setting {name!r} must be a positive integer, got {value!r}"
                )
        check_optional_count(self.augmentation_workers, 0, "augmentation_workers", "training")
        check_optional_count(self.threads, 1, "threads", "training")
        check_optional_count(self.seed, 0, "seed", "training")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"training setting 'optimizer' must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"training setting 'augmentation' must be one of {AUGMENTATIONS}, "
                f"got {self.augmentation!r}"
            )
        if self.initial_lr is not None and (
            isinstance(self.initial_lr, bool)
            or not isinstance(self.initial_lr, int | float)
            or not 0 < self.initial_lr < 1
        ):
            raise ValueError(
                f"training setting 'initial_lr' must lie in (0, 1), got {self.initial_lr!r}"
            )
        for name in ("cpu_bf16", "final_validation"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"training setting {name!r} must be true or false, got {getattr(self, name)!r}"
                )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "TrainingSettings":
        """From a profile's `training:` block in data/study.yaml; unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "training")

    def fingerprint(self) -> str:
        """A hash of the settings that change what is trained (not of how many processes and
        threads do the work)."""
        relevant = {k: v for k, v in asdict(self).items() if k not in NOT_FINGERPRINTED}
        if self.augmentation == "default":  # trainings from before the setting keep their stamps
            del relevant["augmentation"]
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConvergenceSettings:
    """When a fold's curves reached a plateau: over its last `window` of epochs (at least
    `min_epochs`) the EMA pseudo-Dice gains or loses at most `max_dice_gain` and the training loss
    falls or rises at most `max_loss_drop` (mean of the window's first half against its second)."""

    window: float = 0.25
    max_dice_gain: float = 0.005
    max_loss_drop: float = 0.02
    min_epochs: int = 3

    def __post_init__(self) -> None:
        for name in ("window", "max_dice_gain", "max_loss_drop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"convergence setting {name!r} must be >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0 < self.window <= 1:
            raise ValueError(f"convergence setting 'window' must lie in (0, 1], got {self.window}")
        if not _positive_int(self.min_epochs) or self.min_epochs < 2:
            raise ValueError(
                f"convergence setting 'min_epochs' must be an integer >= 2, got {self.min_epochs!r}"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "ConvergenceSettings":
        """From a profile's `convergence:` block in data/study.yaml; unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "convergence")


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class PlanEdits:
    """The profile's edits to nnU-Net's default 2d plan; None keeps nnU-Net's choice."""

    batch_size: int | None = None
    features_per_stage: tuple[int, ...] | None = None
    patch_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and not _positive_int(self.batch_size):
            raise ValueError(
                f"plan edit batch_size must be a positive integer, got {self.batch_size!r}"
            )
        for name in ("features_per_stage", "patch_size"):
            value = getattr(self, name)
            if value is not None:
                if not value or not all(_positive_int(v) for v in value):
                    raise ValueError(f"plan edit {name} must list positive integers, got {value!r}")
                object.__setattr__(self, name, tuple(value))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "PlanEdits":
        """From a profile's `nnunet:` block in data/study.yaml; unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "nnunet")


@dataclass(frozen=True)
class PredictionSettings:
    """nnU-Net's inference options: test-time mirroring (its default) and sliding-window overlap;
    and the torch threads of the prediction process (None: torch's default, every core)."""

    mirroring: bool = True
    tile_step_size: float = 0.5
    threads: int | None = None

    def __post_init__(self) -> None:
        check_optional_count(self.threads, 1, "threads", "prediction")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "PredictionSettings":
        """From a profile's `prediction:` block in data/study.yaml; unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "prediction")


@dataclass(frozen=True)
class SyntheticCohortSettings:
    """What the synthetic cohort generator makes for a profile (lib.cohort.synthetic.CohortSpec
    checks the values: group counts, grid, planted effects)."""

    subjects: dict
    matrix: int
    pixel_mm: float
    slices: int
    slice_gap_mm: float
    effects: dict | None = None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> "SyntheticCohortSettings":
        """From a profile's `synthetic_cohort:` block; unknown or missing keys are an error."""
        missing = [f.name for f in fields(cls) if f.name != "effects" and f.name not in mapping]
        if missing:
            raise ValueError(f"synthetic_cohort setting(s) {missing} missing")
        return settings_from_mapping(cls, mapping, "synthetic_cohort")

    def as_mapping(self) -> dict:
        """The block as written in data/study.yaml (without `effects` when not given)."""
        return {k: v for k, v in asdict(self).items() if v is not None}
