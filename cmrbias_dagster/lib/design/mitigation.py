"""An experiment's bias mitigation (docs/mitigation.md): the strategy its folds train with and its
settings, written in data/study.yaml as `mitigation: oversampling` or as a block
`mitigation: {strategy: group_dro, group_dro_step: 0.01}`."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .fields import StudyDesignError, mapping_field, required_field, text_field

STRATEGIES = (
    "none",
    "oversampling",
    "reweighting",
    "group_dro",
    "protected_models",
    "cropping",
    # A control, not a mitigation: the per-sample loss reweighting and Group DRO train with, every
    # case weighted 1, to tell their weighting from their change of loss.
    "per_sample_loss",
)
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


@dataclass(frozen=True)
class Mitigation:
    """How a fold's training counters the imbalance of its groups; `none` trains as nnU-Net does."""

    strategy: str = "none"
    # Group DRO's step on the group weights: q_g <- q_g exp(step * loss_g) (Sagawa et al. 2020).
    group_dro_step: float = DEFAULT_GROUP_DRO_STEP
    # Cropping: the margin added on each side of the heart's in-plane box.
    crop_margin_mm: float = DEFAULT_CROP_MARGIN_MM
    # Group DRO with oversampling's group-balanced sampler, as Sagawa et al. pair them.
    balanced_sampling: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"mitigation must be one of {STRATEGIES}, got {self.strategy!r}")
        step, margin = self.group_dro_step, self.crop_margin_mm
        if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
            raise ValueError(f"'group_dro_step' must be a positive number, got {step!r}")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
            raise ValueError(f"'crop_margin_mm' must be a number >= 0, got {margin!r}")
        if not isinstance(self.balanced_sampling, bool):
            raise ValueError(
                f"'balanced_sampling' must be true or false, got {self.balanced_sampling!r}"
            )

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
    raw = entry.get("mitigation", "none")
    settings = {key: entry[key] for key in PARAMETERS if key in entry}
    if isinstance(raw, Mapping):
        block = mapping_field(raw, f"{where}: block 'mitigation'")
        unknown = sorted(set(block) - {"strategy", *PARAMETERS})
        if unknown:
            raise StudyDesignError(
                f"{where}: block 'mitigation': unknown key(s) {unknown}; "
                f"known: strategy, {', '.join(PARAMETERS)}"
            )
        twice = sorted(set(settings) & set(block))
        if twice:
            raise StudyDesignError(
                f"{where}: '{twice[0]}' is given twice, beside and inside block 'mitigation'"
            )
        raw = required_field(block, "strategy", f"{where}: block 'mitigation'")
        settings |= {key: block[key] for key in PARAMETERS if key in block}
    strategy = text_field(raw, "mitigation", where)
    if strategy not in STRATEGIES:
        raise StudyDesignError(
            f"{where}: field 'mitigation' must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    for key in settings:
        if PARAMETERS[key] != strategy:
            raise StudyDesignError(
                f"{where}: '{key}' applies to mitigation '{PARAMETERS[key]}' only, not {strategy!r}"
            )
    try:
        return Mitigation(strategy, **settings)
    except ValueError as error:
        raise StudyDesignError(f"{where}: {error}") from None
