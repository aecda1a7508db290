"""An experiment's bias mitigation (docs/mitigation.md): the strategy its folds train with and its
settings, written in data/study.yaml as `mitigation: oversampling` or as a block
`mitigation: {strategy: group_dro, group_dro_step: 0.01}`."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .fields import StudyDesignError, mapping_field, required_field, text_field

STRATEGIES = ("none", "oversampling", "reweighting", "group_dro", "protected_models")
DEFAULT_GROUP_DRO_STEP = 0.01
# Keys an experiment may hold besides those of the comparison itself.
EXPERIMENT_KEYS = ("mitigation", "group_dro_step", "varies")


@dataclass(frozen=True)
class Mitigation:
    """How a fold's training counters the imbalance of its groups; `none` trains as nnU-Net does."""

    strategy: str = "none"
    # Group DRO's step on the group weights: q_g <- q_g exp(step * loss_g) (Sagawa et al. 2020).
    group_dro_step: float = DEFAULT_GROUP_DRO_STEP

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"mitigation must be one of {STRATEGIES}, got {self.strategy!r}")
        step = self.group_dro_step
        if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
            raise ValueError(f"'group_dro_step' must be a positive number, got {step!r}")

    @property
    def active(self) -> bool:
        """Whether training differs from nnU-Net's own."""
        return self.strategy != "none"

    def fingerprint(self) -> str:
        """A hash of what the strategy changes in training; "" for `none`, so that unmitigated
        trainings keep the stamps they had before mitigation existed."""
        if not self.active:
            return ""
        relevant = asdict(self) if self.strategy == "group_dro" else {"strategy": self.strategy}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def parse_mitigation(entry: Mapping[str, Any], where: str) -> Mitigation:
    """The experiment entry's mitigation: a strategy name (with `group_dro_step` beside it) or a
    block; an unknown strategy, an unknown key or a step without group DRO is refused."""
    raw = entry.get("mitigation", "none")
    step = entry.get("group_dro_step")
    if isinstance(raw, Mapping):
        block = mapping_field(raw, f"{where}: block 'mitigation'")
        unknown = sorted(set(block) - {"strategy", "group_dro_step"})
        if unknown:
            raise StudyDesignError(
                f"{where}: block 'mitigation': unknown key(s) {unknown}; "
                "known: strategy, group_dro_step"
            )
        if step is not None and "group_dro_step" in block:
            raise StudyDesignError(
                f"{where}: 'group_dro_step' is given twice, beside and inside block 'mitigation'"
            )
        raw = required_field(block, "strategy", f"{where}: block 'mitigation'")
        step = block.get("group_dro_step", step)
    strategy = text_field(raw, "mitigation", where)
    if strategy not in STRATEGIES:
        raise StudyDesignError(
            f"{where}: field 'mitigation' must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if step is not None and strategy != "group_dro":
        raise StudyDesignError(
            f"{where}: 'group_dro_step' applies to mitigation 'group_dro' only, not {strategy!r}"
        )
    try:
        return Mitigation(strategy, DEFAULT_GROUP_DRO_STEP if step is None else step)
    except ValueError as error:
        raise StudyDesignError(f"{where}: {error}") from None
