"""An experiment's bias mitigation (docs/mitigation.md): the strategy its folds train with and its
settings, written in data/study.yaml as `mitigation: oversampling` or as a block
`mitigation: {strategy: group_dro, group_dro_step: 0.01}`; several strategies trained together as
a list, `mitigation: [cropping, oversampling]` (or `{strategy: [cropping, oversampling]}`)."""

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool

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
    # FairSeg's fair error-bound scaling (Tian et al., ICLR 2024): each group's predictions scaled
    # in the Dice by a weight from its error relative to the best-off group's.
    "error_bound_scaling",
]
STRATEGIES: tuple[str, ...] = Strategy.__args__
DEFAULT_GROUP_DRO_STEP = 0.01
# FEBS's exponent on min error / group error (the official code's default, `--gamma 1.0`).
DEFAULT_ERROR_BOUND_GAMMA = 1.0
# The margin around the heart's box, in mm: room for the first-stage model's box to miss a little.
DEFAULT_CROP_MARGIN_MM = 10.0
# Each strategy's own setting: its name in the design, beside `mitigation` or in its block.
PARAMETERS = {
    "group_dro_step": "group_dro",
    "crop_margin_mm": "cropping",
    "balanced_sampling": "group_dro",
    "error_bound_gamma": "error_bound_scaling",
}
# The strategies that replace the batch's loss by a combination of per-sample losses: one at most
# per training (a second would combine losses the first already combined).
LOSS_STRATEGIES = ("reweighting", "group_dro", "error_bound_scaling", "per_sample_loss")
# Keys an experiment may hold besides those of the comparison itself.
EXPERIMENT_KEYS = ("mitigation", *PARAMETERS, "varies")


def combination_refusal(strategies: tuple[str, ...]) -> str | None:
    """Why these strategies cannot train one model together (docs/mitigation.md, "Combined
    strategies"); None when they can."""
    if len(set(strategies)) < len(strategies):
        return "lists a strategy twice"
    if "none" in strategies:
        return "'none' means no mitigation, so it combines with nothing"
    if "protected_models" in strategies:
        return (
            "protected models train one model per group on that group's cases only: a group "
            "balancing strategy has one group to balance, and a cascade per group is not built"
        )
    losses = [s for s in strategies if s in LOSS_STRATEGIES]
    if len(losses) > 1:
        return (
            f"{' and '.join(losses)} each replace the batch's loss by their own combination of "
            "per-sample losses; one training takes one"
        )
    if "oversampling" in strategies and "reweighting" in strategies:
        return (
            "both correct the same group frequencies: with balanced draws, inverse-frequency "
            "weights would favour the small group a second time"
        )
    if "oversampling" in strategies and "group_dro" in strategies:
        return "Group DRO with oversampling's sampler is `group_dro` with `balanced_sampling: true`"
    return None


def _canonical(strategy: object) -> object:
    """A list of strategies as a sorted tuple (one strategy: its name), so that the order the file
    writes them in changes neither the design nor its training stamp."""
    if isinstance(strategy, list | tuple):
        names = tuple(sorted(strategy)) if all(isinstance(s, str) for s in strategy) else strategy
        return names[0] if len(names) == 1 else names
    return strategy


@design_model
class Mitigation:
    """How a fold's training counters the imbalance of its groups; `none` trains as nnU-Net does.
    `strategy` is one strategy's name or, for strategies trained together, a sorted tuple."""

    strategy: Annotated[
        Strategy | tuple[Strategy, ...],
        BeforeValidator(_canonical),
        Field(description=f"must be one of {', '.join(STRATEGIES)}, or a list of them"),
    ] = "none"
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
    # FEBS's gamma: w_g = tanh((min_h E_h / E_g) ** gamma).
    error_bound_gamma: Annotated[Number, Field(gt=0, description="must be a positive number")] = (
        DEFAULT_ERROR_BOUND_GAMMA
    )

    def __post_init__(self) -> None:
        if isinstance(self.strategy, tuple):
            refusal = combination_refusal(self.strategy)
            if refusal is not None:
                raise ValueError(f"mitigation [{', '.join(self.strategy)}] {refusal}")

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies the training applies: one, or those of a combination, sorted."""
        return self.strategy if isinstance(self.strategy, tuple) else (self.strategy,)

    def uses(self, strategy: str) -> bool:
        """Whether training applies `strategy`, alone or in a combination."""
        return strategy in self.strategies

    @property
    def label(self) -> str:
        """The strategy as tables, figures and metadata name it: `cropping + oversampling`."""
        return " + ".join(self.strategies)

    @property
    def active(self) -> bool:
        """Whether training differs from nnU-Net's own."""
        return self.strategy != "none"

    def fingerprint(self) -> str:
        """A hash of what the strategy changes in training; "" for `none`, so that unmitigated
        trainings keep the stamps they had before mitigation existed. A combination hashes its
        list of strategies and all their settings, so it never shares a single strategy's stamp."""
        if not self.active:
            return ""
        strategy = list(self.strategies) if isinstance(self.strategy, tuple) else self.strategy
        relevant: dict[str, Any] = {"strategy": strategy}
        relevant |= {k: getattr(self, k) for k, s in PARAMETERS.items() if self.uses(s)}
        if not self.balanced_sampling:  # Group DRO's stamps from before the option stay put
            relevant.pop("balanced_sampling", None)
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def parse_mitigation(entry: Mapping[str, Any], where: str) -> Mitigation:
    """The experiment entry's mitigation: a strategy name or a list of them (with their settings
    beside it) or a block; an unknown strategy, an unknown key, another strategy's setting or a
    combination that cannot train together (combination_refusal) is refused."""
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
        names = _strategy_names(strategy["strategy"], f"{block}: key 'strategy'")
        # Refuses unknown keys of the block, naming them.
        typed(Mitigation, {**strategy, "strategy": "none"}, block, "key")
        settings |= {key: strategy[key] for key in PARAMETERS if key in strategy}
    else:
        # The file's key is `mitigation`, the model's `strategy`: checked here to name the file's.
        names = _strategy_names(strategy, f"{where}: field 'mitigation'")
    for key in settings:
        if PARAMETERS[key] not in names:
            raise StudyDesignError(
                f"{where}: '{key}' applies to mitigation '{PARAMETERS[key]}' only, not "
                f"{' + '.join(names)!r}"
            )
    return typed(Mitigation, {"strategy": names, **settings}, where)


def _strategy_names(strategy: object, field: str) -> list[str]:
    """The strategy names a design gives as one name or a list; StudyDesignError naming `field`
    when one is not a known strategy."""
    names = list(strategy) if isinstance(strategy, list) else [strategy]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise StudyDesignError(
            f"{field} must be a non-empty string or list of strategies, got {strategy!r}"
        )
    for name in names:
        if name not in STRATEGIES:
            raise StudyDesignError(f"{field} must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return names
