"""The profile's edits to nnU-Net's default 2d plan (batch size, network stages, patch size)."""

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

from cmrbias_dagster.lib.settings_blocks import settings_from_mapping

CONFIGURATION = "2d"
# Lists in arch_kwargs with one entry per encoder stage; the decoder has one stage fewer.
_PER_STAGE = ("kernel_sizes", "strides", "n_conv_per_stage")
_PER_DECODER_STAGE = ("n_conv_per_stage_decoder",)


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


def apply_plan_edits(plans: dict, edits: PlanEdits, configuration: str = CONFIGURATION) -> dict:
    """A copy of nnU-Net's plans with `edits` applied to one configuration; `plans` is unchanged."""
    edited = copy.deepcopy(plans)
    try:
        config = edited["configurations"][configuration]
        arch = config["architecture"]["arch_kwargs"]
    except KeyError as error:
        raise ValueError(
            f"plans have no architecture for configuration {configuration!r}"
        ) from error
    if edits.batch_size is not None:
        config["batch_size"] = edits.batch_size
    if edits.features_per_stage is not None:
        n_stages = len(edits.features_per_stage)
        if n_stages > arch["n_stages"]:
            raise ValueError(
                f"features_per_stage {edits.features_per_stage} has {n_stages} stages; nnU-Net "
                f"planned {arch['n_stages']} and stages can only be removed"
            )
        arch["n_stages"] = n_stages
        arch["features_per_stage"] = list(edits.features_per_stage)
        for key in _PER_STAGE:
            arch[key] = arch[key][:n_stages]
        for key in _PER_DECODER_STAGE:
            arch[key] = arch[key][: n_stages - 1]
    if edits.patch_size is not None:
        if len(edits.patch_size) != len(config["patch_size"]):
            raise ValueError(
                f"patch_size {edits.patch_size} must have {len(config['patch_size'])} axes"
            )
        config["patch_size"] = list(edits.patch_size)
    # The network halves the patch at each stride: every axis must divide by the total stride.
    total_stride = [math.prod(axis) for axis in zip(*arch["strides"], strict=True)]
    if any(size % stride for size, stride in zip(config["patch_size"], total_stride, strict=True)):
        raise ValueError(
            f"patch size {config['patch_size']} is not divisible by the network's total stride "
            f"{total_stride}"
        )
    return edited
