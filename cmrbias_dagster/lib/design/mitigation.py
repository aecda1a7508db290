"""An experiment's bias mitigation (docs/mitigation.md): the strategy its folds train with and its
settings, written in data/study.yaml as `mitigation: oversampling` or as a block
`mitigation: {strategy: group_dro, group_dro_step: 0.01}`."""

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool

from .fields import Number, StudyDesignError, design_model, typed

Strategy = Literal[
    "none",
    "oversampling",
    "reweighting",
    "group_dro",
    "protected_models",
    "cropping",
    # A control, not a mitigation: the per-sample loss reweighting and Group DRO train with, every
    # case weighted 1, to tell their weighting from their change of loss.
    "per_sample_loss",
]
STRATEGIES: tuple[str, ...] = Strategy.__args__
DEFAULT_GROUP_DRO_STEP = 0.01
# The margin around the heart's box, in mm: room for the first-stage model's box to miss a little.
DEFAULT_CROP_MARGIN_MM = 10.0
# Each strategy's own setting: its name in the design, beside `mitigation` or in its block.
PARAMETERS = {
    "group_dro_step": "group_dro",
    "crop_margin_mm": "cropping",
    "balanced_sampling": "group_dro",
}
# Keys an experiment may hold besides those of the comparison itself.
EXPERIMENT_KEYS = ("mitigation", *PARAMETERS, "varies")


@design_model
class Mitigation:
    """How a fold's training counters the imbalance of its groups; `none` trains as nnU-Net does."""

    strategy: Annotated[Strategy, Field(description=f"must be one of {', '.join(STRATEGIES)}")] = (
        "none"
    )
    # Group DRO's step on the group weights: q_g <- q_g exp(step * loss_g) (Sagawa et al. 2020).
    group_dro_step: Annotated[Number, Field(gt=0, description="must be a positive number")] = (
        DEFAULT_GROUP_DRO_STEP
    )
    # Cropping: the margin added on each side of the heart's in-plane box.
    crop_margin_mm: Annotated[Number, Field(ge=0, description="must be a number >= 0")] = (
        DEFAULT_CROP_MARGIN_MM
    )
    # Group DRO with oversampling's group-balanced sampler, as Sagawa et al. pair them.
    balanced_sampling: StrictBool = False

    @property
    def active(self) -> bool:
        """Whether training differs from nnU-Net's own."""
        return self.strategy != "none"

    def fingerprint(self) -> str:
        """A hash of what the strategy changes in training; "" for `none`, so that unmitigated
        trainings keep the stamps they had before mitigation existed."""
        if not self.active:
            return ""
        relevant: dict[str, Any] = {"strategy": self.strategy}
        relevant |= {k: getattr(self, k) for k, s in PARAMETERS.items() if s == self.strategy}
        if not self.balanced_sampling:  # Group DRO's stamps from before the option stay put
            relevant.pop("balanced_sampling", None)
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def parse_mitigation(entry: Mapping[str, Any], where: str) -> Mitigation:
    """The experiment entry's mitigation: a strategy name (with its setting beside it) or a
    block; an unknown strategy, an unknown key or another strategy's setting is refused."""
    strategy = entry.get("mitigation", "none")
    settings = {key: entry[key] for key in PARAMETERS if key in entry}
    if isinstance(strategy, Mapping):
        block = f"{where}: block 'mitigation'"
        if "strategy" not in strategy:
            raise StudyDesignError(f"{block}: missing required field 'strategy'")
        twice = sorted(set(settings) & set(strategy))
        if twice:
            raise StudyDesignError(
                f"{where}: '{twice[0]}' is given twice, beside and inside block 'mitigation'"
            )
        # Refuses unknown keys of the block, naming them.
        typed(Mitigation, strategy, block, "key")
        settings |= {key: strategy[key] for key in PARAMETERS if key in strategy}
        strategy = strategy["strategy"]
    # The file's key is `mitigation`, the model's `strategy`: checked here to name the file's.
    if not isinstance(strategy, str) or not strategy:
        raise StudyDesignError(
            f"{where}: field 'mitigation' must be a non-empty string, got {strategy!r}"
        )
    if strategy not in STRATEGIES:
        raise StudyDesignError(
            f"{where}: field 'mitigation' must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    for key in settings:
        if PARAMETERS[key] != strategy:
            raise StudyDesignError(
                f"{where}: '{key}' applies to mitigation '{PARAMETERS[key]}' only, not {strategy!r}"
            )
    return typed(Mitigation, {"strategy": strategy, **settings}, where)
