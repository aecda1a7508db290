"""One experiment of the study design: the comparison of two groups an entry under
`experiments:` writes, with its mitigation, its network and which repeated draw it is."""

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt

from .fields import StudyDesignError, Text, design_model, typed
from .mitigation import EXPERIMENT_KEYS, Mitigation, parse_mitigation
from .settings import NetworkSettings

# Experiment names become Dagster partition keys; multi-partition keys are joined with "|".
_EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
COMPARISON_KEYS = ("attribute", "groups", "held_attribute", "held_values")
# An experiment's own network (a block like a profile's `network`), beside its mitigation keys.
_NETWORK_KEY = "network"


def _two_distinct(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) != 2 or len(set(values)) != 2:
        raise ValueError("must list two distinct values")
    return values


Pair = Annotated[
    tuple[Text, ...],
    AfterValidator(_two_distinct),
    Field(description="must list two distinct values"),
]


@design_model
class Experiment:
    """One comparison of two groups, as its entry under `experiments:` writes it."""

    name: str
    attribute: Text
    groups: Pair
    # Optional: a cohort such as ACDC has one attribute only (pathology) and nothing to hold.
    held_attribute: Text | None = None
    held_values: Pair | None = None
    mitigation: Mitigation = Mitigation()
    # The experiment this one is a training variant of (same comparison, same training sets).
    varies: Text | None = None
    # nnU-Net's configuration and planner of this experiment's models; None: the profile's.
    network: NetworkSettings | None = None
    # Repeated draws: repeat 1 keeps the file's name, repeat r > 1 is `<base>_r<r>`; `base` is
    # the file's name (empty here means this experiment's own name).
    repeat: StrictInt = 1
    base: str = ""

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)
        held, values = self.held_attribute, self.held_values
        if held is None and values is not None:
            raise ValueError(
                "field 'held_values' needs 'held_attribute' (the attribute they belong to)"
            )
        if held is not None and held == self.attribute:
            raise ValueError("field 'held_attribute' must differ from 'attribute'")
        if held is not None and values is None:
            raise ValueError(
                f"field 'held_attribute' {held!r} needs 'held_values' listing the two values "
                "kept 50/50 (or leave out both to hold nothing)"
            )

    @property
    def strata(self) -> tuple[tuple[str, str | None], ...]:
        """(group, held value) pairs; held value None for every group without a held attribute."""
        held: tuple[str | None, ...] = self.held_values or (None,)
        return tuple((group, value) for group in self.groups for value in held)

    def stratum_label(self, group: str, held: str | None) -> str:
        """A stratum as `attribute=group[, held_attribute=held]`, for messages and checks."""
        label = f"{self.attribute}={group}"
        return f"{label}, {self.held_attribute}={held}" if self.held_attribute else label


def parse_experiment(name: Any, raw: Any, source: str) -> Experiment:
    """The entry `name: raw` of the file's `experiments:`; errors name `source`, the entry and
    the field."""
    where = f"{source}: experiment {name!r}"
    if not isinstance(name, str) or not _EXPERIMENT_NAME.match(name):
        raise StudyDesignError(f"{where}: name must match {_EXPERIMENT_NAME.pattern}")
    if not isinstance(raw, Mapping):
        raise StudyDesignError(f"{where}: expected a mapping, got {type(raw).__name__}")
    # A misspelt `mitigation` must not quietly train an unmitigated twin.
    unknown = sorted(set(raw) - {*COMPARISON_KEYS, *EXPERIMENT_KEYS, _NETWORK_KEY})
    if unknown:
        known = ", ".join((*COMPARISON_KEYS, *EXPERIMENT_KEYS, _NETWORK_KEY))
        raise StudyDesignError(f"{where}: unknown field(s) {unknown}; known: {known}")
    comparison = {key: raw[key] for key in (*COMPARISON_KEYS, "varies") if key in raw}
    network = None
    if raw.get(_NETWORK_KEY) is not None:
        network = typed(NetworkSettings, raw[_NETWORK_KEY], f"{where}: block 'network'", "key")
    return typed(
        Experiment,
        comparison,
        where,
        name=name,
        mitigation=parse_mitigation(raw, where),
        network=network,
    )
