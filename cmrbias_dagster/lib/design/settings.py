"""The typed blocks of a profile in data/study.yaml: `nnunet` (plan edits), `training`,
`convergence`, `prediction` and `synthetic_cohort`, each a pydantic model that refuses unknown
keys, wrong types and values out of bounds."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from cmrbias_dagster.lib.design.fields import Number, PositiveInt, design_model, typed

# How the work is spread over processes and threads, not what is trained: left out of the stamp.
NOT_FINGERPRINTED = ("augmentation_workers", "threads")
Optimizer = Literal["sgd", "adamw"]
Augmentation = Literal["default", "seg_order0"]  # lib.nnunet.augmentation
OPTIMIZERS: tuple[str, ...] = Optimizer.__args__
AUGMENTATIONS: tuple[str, ...] = Augmentation.__args__

Epochs = Annotated[StrictInt, Field(gt=0, description="must be a positive integer")]
Workers = Annotated[StrictInt | None, Field(ge=0, description="must be >= 0")]
Threads = Annotated[StrictInt | None, Field(ge=1, description="must be >= 1")]
Share = Annotated[StrictFloat, Field(ge=0, description="must be >= 0")]
PositiveInts = Annotated[
    tuple[PositiveInt, ...] | None, Field(min_length=1, description="must list positive integers")
]
# nnU-Net's configurations and planners a design may choose (docs/study.md, "The network").
Configuration = Literal["2d", "3d_fullres"]
Planner = Literal["default", "nnUNetPlannerResEncM", "nnUNetPlannerResEncL"]
CONFIGURATIONS: tuple[str, ...] = Configuration.__args__
PLANNERS: tuple[str, ...] = Planner.__args__
# The plans file (and trainer-folder part) each planner writes: nnU-Net's own names.
PLANS_IDENTIFIERS = {
    "default": "nnUNetPlans",
    "nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans",
    "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans",
}


class _Block:
    """`from_mapping` for a profile block, named `block` in data/study.yaml."""

    block = ""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> Self:
        """From the profile's block in data/study.yaml; unknown keys and bad values are an error
        naming the block and the key."""
        return typed(cls, mapping, f"block {cls.block!r}", f"{cls.block} setting")


@design_model
class NetworkSettings(_Block):
    """Which nnU-Net network a model is: its configuration and its planner (the default U-Net,
    or a residual-encoder preset); the defaults are the paper's (2d, default planner)."""

    block = "network"
    configuration: Annotated[
        Configuration, Field(description=f"must be one of {CONFIGURATIONS}")
    ] = "2d"
    planner: Annotated[Planner, Field(description=f"must be one of {PLANNERS}")] = "default"

    @property
    def plans_identifier(self) -> str:
        """nnU-Net's name of the plans this planner writes (nnUNetPlans, nnUNetResEncUNetMPlans)."""
        return PLANS_IDENTIFIERS[self.planner]

    @property
    def planner_class(self) -> str:
        """nnU-Net's class name of the planner (`ExperimentPlanner` for the default)."""
        return "ExperimentPlanner" if self.planner == "default" else self.planner

    @property
    def is_default(self) -> bool:
        """Whether this is nnU-Net's default 2d network, the one every model was before."""
        return self == NetworkSettings()


@design_model
class TrainingSettings(_Block):
    """nnUNetTrainer's schedule; the defaults are the paper's (500 epochs x 250 iterations)."""

    block = "training"
    epochs: Epochs = 500
    iterations_per_epoch: Epochs = 250
    val_iterations_per_epoch: Epochs = 50
    save_every: Epochs = 50  # epochs between resumable checkpoints
    # nnU-Net's full validation of the fold: real Dice per class.
    final_validation: StrictBool = True
    augmentation_workers: Workers = None  # nnUNet_n_proc_DA; 0 = augment in-process (small CPUs)
    threads: Threads = None  # torch threads of the training process; None: torch's default
    # bfloat16 autocast and channels-last on a CPU with native bf16 (AVX512-BF16/AMX); fp32 on
    # other CPUs. CUDA keeps nnU-Net's own mixed precision either way.
    cpu_bf16: StrictBool = False
    # nnU-Net's SGD (Nesterov 0.99) or AdamW (amsgrad, as nnUNetTrainerAdam), both with its poly
    # schedule from `initial_lr` (None: nnU-Net's 0.01).
    optimizer: Annotated[Optimizer, Field(description=f"must be one of {OPTIMIZERS}")] = "sgd"
    initial_lr: Annotated[
        StrictFloat | None, Field(gt=0, lt=1, description="must lie in (0, 1)")
    ] = None
    # nnU-Net's training augmentation, or the same with the segmentation resampled by nearest
    # neighbour instead of interpolated one-hot masks (nnUNetTrainer_DASegOrd0; cheaper on a CPU).
    augmentation: Annotated[Augmentation, Field(description=f"must be one of {AUGMENTATIONS}")] = (
        "default"
    )
    # Seeds Python's, NumPy's and torch's generators (plus the fold number) before the trainer is
    # built; the fold assets set it to the design's seed. None: unseeded.
    seed: Workers = None
    # The network trained: set from the profile's `network` block or the experiment's (never in
    # the `training` block; seeded_training puts it here so every training step sees it).
    network: NetworkSettings = NetworkSettings()

    def fingerprint(self) -> str:
        """A hash of the settings that change what is trained (not of how many processes and
        threads do the work)."""
        relevant = {k: v for k, v in asdict(self).items() if k not in NOT_FINGERPRINTED}
        if self.augmentation == "default":  # trainings from before the setting keep their stamps
            del relevant["augmentation"]
        if self.network.is_default:  # nor do trainings of the network every model was before
            del relevant["network"]
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@design_model
class ConvergenceSettings(_Block):
    """When a fold's curves reached a plateau: over its last `window` of epochs (at least
    `min_epochs`) the EMA pseudo-Dice gains or loses at most `max_dice_gain` and the training loss
    falls or rises at most `max_loss_drop` (mean of the window's first half against its second)."""

    block = "convergence"
    window: Annotated[StrictFloat, Field(gt=0, le=1, description="must lie in (0, 1]")] = 0.25
    max_dice_gain: Share = 0.005
    max_loss_drop: Share = 0.02
    min_epochs: Annotated[StrictInt, Field(ge=2, description="must be an integer >= 2")] = 3


@design_model
class PlanEdits(_Block):
    """The profile's edits to nnU-Net's default 2d plan; None keeps nnU-Net's choice."""

    block = "nnunet"
    batch_size: Annotated[PositiveInt | None, Field(description="must be a positive integer")] = (
        None
    )
    features_per_stage: PositiveInts = None
    patch_size: PositiveInts = None


def check_plan_edits(edits: PlanEdits, network: NetworkSettings, where: str) -> None:
    """Refuse plan edits that cannot fit the network's configuration (a 2-axis patch for a 3d
    network, a 3-axis one for 2d); ValueError naming `where`, the configuration and the edit."""
    axes = 3 if network.configuration.startswith("3d") else 2
    if edits.patch_size is not None and len(edits.patch_size) != axes:
        raise ValueError(
            f"{where}: configuration {network.configuration!r} needs a patch_size of {axes} axes "
            f"in block 'nnunet', got {list(edits.patch_size)}"
        )


@design_model
class PredictionSettings(_Block):
    """nnU-Net's inference options: test-time mirroring (its default) and sliding-window overlap;
    and the torch threads of the prediction process (None: torch's default, every core)."""

    block = "prediction"
    mirroring: StrictBool = True
    tile_step_size: Annotated[StrictFloat, Field(gt=0, le=1, description="must lie in (0, 1]")] = (
        0.5
    )
    threads: Threads = None


@design_model
class SyntheticCohortSettings(_Block):
    """What the synthetic cohort generator makes for a profile (lib.cohort.synthetic.CohortSpec
    checks the values: group counts, grid, planted effects)."""

    block = "synthetic_cohort"
    subjects: dict
    matrix: StrictInt
    pixel_mm: Number
    slices: StrictInt
    slice_gap_mm: Number
    effects: dict | None = None
    # Another scanner's contrast, noise and pixel (lib.cohort.synthetic.ScannerShift).
    scanner: dict | None = None

    def as_mapping(self) -> dict:
        """The block as written in data/study.yaml (without `effects`, `scanner` when not given)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


Ratios = Annotated[
    tuple[Annotated[StrictInt, Field(ge=0, le=100)], ...],
    Field(description="must list ratios in [0, 100]"),
]


@design_model
class ProbeSettings(_Block):
    """The attribute probes (lib.probes, docs/probes.md): can a classifier tell an experiment's two
    groups apart from the images, the ground-truth masks or a trained model's encoder features?
    Slices are resampled to `image_size`; a small CNN trains `epochs` epochs per cross-validation
    fold (`folds`, grouped by subject); CIs come from `resamples` bootstrap draws of subjects; the
    encoder features are read from fold 0 of the experiment's models at `encoder_ratios`."""

    block = "probes"
    enabled: StrictBool = True
    image_size: Annotated[StrictInt, Field(ge=16, description="must be an integer >= 16")] = 64
    epochs: Epochs = 4
    batch_size: Epochs = 64
    channels: PositiveInts = (8, 16, 32)
    learning_rate: Annotated[StrictFloat, Field(gt=0, lt=1, description="must lie in (0, 1)")] = (
        3e-3
    )
    folds: Annotated[StrictInt, Field(ge=2, description="must be an integer >= 2")] = 5
    resamples: Epochs = 1000
    encoder_ratios: Ratios = (0, 100)
    # One torch thread: the probes' small convolutions run slower on two threads of a busy CPU.
    threads: Threads = 1
