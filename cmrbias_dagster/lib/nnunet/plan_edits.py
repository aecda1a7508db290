"""The profile's edits to nnU-Net's plan of one configuration (batch size, network stages, patch
size): of the default U-Net or of a residual-encoder preset's."""

import copy
import math

from cmrbias_dagster.lib.design.settings import PlanEdits

CONFIGURATION = "2d"
# Lists in arch_kwargs with one entry per encoder stage; the decoder has one stage fewer.
# The residual encoder counts `n_blocks_per_stage` where the plain U-Net `n_conv_per_stage`.
_PER_STAGE = ("kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage")
_PER_DECODER_STAGE = ("n_conv_per_stage_decoder",)


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
                f"planned {arch['n_stages']} for configuration {configuration!r} and stages can "
                "only be removed"
            )
        arch["n_stages"] = n_stages
        arch["features_per_stage"] = list(edits.features_per_stage)
        for key in _PER_STAGE:
            if key in arch:
                arch[key] = arch[key][:n_stages]
        for key in _PER_DECODER_STAGE:
            arch[key] = arch[key][: n_stages - 1]
    if edits.patch_size is not None:
        if len(edits.patch_size) != len(config["patch_size"]):
            raise ValueError(
                f"patch_size {edits.patch_size} must have {len(config['patch_size'])} axes for "
                f"configuration {configuration!r}"
            )
        config["patch_size"] = list(edits.patch_size)
    # The network halves the patch at each stride: every axis must divide by the total stride.
    total_stride = [math.prod(axis) for axis in zip(*arch["strides"], strict=True)]
    if any(size % stride for size, stride in zip(config["patch_size"], total_stride, strict=True)):
        raise ValueError(
            f"patch size {config['patch_size']} is not divisible by the network's total stride "
            f"{total_stride} (configuration {configuration!r})"
        )
    return edited
