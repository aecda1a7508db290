"""The study design (data/study.yaml): experiments, training ratios and per-profile sizes."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .study_design_fields import (
    StudyDesignError,
    integer_field,
    mapping_field,
    pair_field,
    ratios_field,
    required_field,
    text_field,
)

# Experiment names become Dagster partition keys; multi-partition keys are joined with "|".
_EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Experiment:
    name: str
    attribute: str
    groups: tuple[str, str]
    # Optional: a cohort such as ACDC has one attribute only (pathology) and nothing to hold.
    held_attribute: str | None = None
    held_values: tuple[str, str] | None = None

    @property
    def strata(self) -> tuple[tuple[str, str | None], ...]:
        """(group, held value) pairs; held value None for every group without a held attribute."""
        held: tuple[str | None, ...] = self.held_values or (None,)
        return tuple((group, value) for group in self.groups for value in held)

    def stratum_label(self, group: str, held: str | None) -> str:
        """A stratum as `attribute=group[, held_attribute=held]`, for messages and checks."""
        label = f"{self.attribute}={group}"
        return f"{label}, {self.held_attribute}={held}" if self.held_attribute else label


@dataclass(frozen=True)
class Profile:
    name: str
    train_size: int
    test_size: int
    folds: int
    # The first `trained_folds` cross-validation folds are trained and ensembled (all by default).
    trained_folds: int
    # Raw mappings read by other modules; left out of the hash so a Profile stays hashable.
    synthetic_cohort: dict = field(default_factory=dict, hash=False)
    nnunet: dict = field(default_factory=dict, hash=False)
    training: dict = field(default_factory=dict, hash=False)
    prediction: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class StudyDesign:
    seed: int
    ratios: tuple[int, ...]
    experiments: tuple[Experiment, ...]
    profiles: tuple[Profile, ...]

    @property
    def experiment_names(self) -> list[str]:
        """Names of the experiments in file order."""
        return [experiment.name for experiment in self.experiments]

    def experiment(self, name: str) -> Experiment:
        """The experiment called `name`; StudyDesignError listing the known names otherwise."""
        for experiment in self.experiments:
            if experiment.name == name:
                return experiment
        raise StudyDesignError(f"unknown experiment {name!r}; known: {self.experiment_names}")

    def profile(self, name: str) -> Profile:
        """The profile called `name`; StudyDesignError listing the known names otherwise."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        known = [profile.name for profile in self.profiles]
        raise StudyDesignError(f"unknown profile {name!r}; known: {known}")


def load_study_design(path: Path) -> StudyDesign:
    """Read and validate the study design YAML file at `path`."""
    with open(path, encoding="utf-8") as handle:
        mapping = yaml.safe_load(handle)
    return parse_study_design(mapping, source=str(path))


def parse_study_design(mapping: Mapping[str, Any], source: str = "study design") -> StudyDesign:
    """Validate a parsed study design mapping; errors name `source`, the entry and the field."""
    top = mapping_field(mapping, source)
    seed = integer_field(required_field(top, "seed", source), "seed", source)
    ratios = ratios_field(required_field(top, "ratios", source), source)
    experiments = mapping_field(
        required_field(top, "experiments", source), f"{source}: field 'experiments'"
    )
    profiles = mapping_field(required_field(top, "profiles", source), f"{source}: field 'profiles'")
    if not experiments or not profiles:
        raise StudyDesignError(
            f"{source}: 'experiments' and 'profiles' must each list at least one"
        )
    parsed = tuple(_experiment(name, raw, source) for name, raw in experiments.items())
    # Sizes must suit the strictest experiment: one with a held attribute halves every group.
    per_group = 2 if any(experiment.held_attribute for experiment in parsed) else 1
    return StudyDesign(
        seed=seed,
        ratios=ratios,
        experiments=parsed,
        profiles=tuple(
            _profile(name, raw, ratios, per_group, source) for name, raw in profiles.items()
        ),
    )


def _experiment(name: Any, raw: Any, source: str) -> Experiment:
    where = f"{source}: experiment {name!r}"
    if not isinstance(name, str) or not _EXPERIMENT_NAME.match(name):
        raise StudyDesignError(f"{where}: name must match {_EXPERIMENT_NAME.pattern}")
    entry = mapping_field(raw, where)
    attribute = text_field(required_field(entry, "attribute", where), "attribute", where)
    groups = pair_field(required_field(entry, "groups", where), "groups", where)
    # Absent and null (`held_attribute:` left empty) both mean: nothing is held.
    held_attribute, held_values = entry.get("held_attribute"), entry.get("held_values")
    if held_attribute is None and held_values is None:
        return Experiment(name=name, attribute=attribute, groups=groups)
    if held_attribute is None:
        raise StudyDesignError(
            f"{where}: field 'held_values' needs 'held_attribute' (the attribute they belong to)"
        )
    held_attribute = text_field(held_attribute, "held_attribute", where)
    if attribute == held_attribute:
        raise StudyDesignError(f"{where}: field 'held_attribute' must differ from 'attribute'")
    if held_values is None:
        raise StudyDesignError(
            f"{where}: field 'held_attribute' {held_attribute!r} needs 'held_values' listing the "
            "two values kept 50/50 (or leave out both to hold nothing)"
        )
    return Experiment(
        name=name,
        attribute=attribute,
        groups=groups,
        held_attribute=held_attribute,
        held_values=pair_field(held_values, "held_values", where),
    )


def _profile(name: Any, raw: Any, ratios: tuple[int, ...], per_group: int, source: str) -> Profile:
    """A profile whose sizes split exactly into two groups of `per_group` strata at every ratio."""
    where = f"{source}: profile {name!r}"
    entry = mapping_field(raw, where)
    sizes = {
        key: integer_field(required_field(entry, key, where), key, where)
        for key in ("train_size", "test_size", "folds")
    }
    for key in ("train_size", "test_size"):
        if sizes[key] <= 0:
            raise StudyDesignError(f"{where}: field {key!r} must be positive, got {sizes[key]}")
    if sizes["test_size"] % (2 * per_group):
        strata = "two groups x two held values" if per_group == 2 else "two groups"
        raise StudyDesignError(
            f"{where}: field 'test_size' must be divisible by {2 * per_group} ({strata}), "
            f"got {sizes['test_size']}"
        )
    if sizes["folds"] < 2:
        raise StudyDesignError(f"{where}: field 'folds' must be at least 2, got {sizes['folds']}")
    trained = entry.get("trained_folds", sizes["folds"])
    sizes["trained_folds"] = integer_field(trained, "trained_folds", where)
    if not 1 <= sizes["trained_folds"] <= sizes["folds"]:
        raise StudyDesignError(
            f"{where}: field 'trained_folds' must be between 1 and 'folds' ({sizes['folds']}), "
            f"got {sizes['trained_folds']}"
        )
    train_size = sizes["train_size"]
    for ratio in ratios:
        first, remainder = divmod(train_size * ratio, 100)
        if remainder or first % per_group or (train_size - first) % per_group:
            rule = "even integers so the held attribute is 50/50" if per_group == 2 else "integers"
            raise StudyDesignError(
                f"{where}: field 'train_size' {train_size} at ratio {ratio} gives "
                f"{train_size * ratio / 100:g} and {train_size - train_size * ratio / 100:g} "
                f"subjects per group; both must be {rule}"
            )
    return Profile(
        name=str(name),
        synthetic_cohort=dict(mapping_field(entry.get("synthetic_cohort") or {}, where)),
        nnunet=dict(mapping_field(entry.get("nnunet") or {}, where)),
        training=dict(mapping_field(entry.get("training") or {}, where)),
        prediction=dict(mapping_field(entry.get("prediction") or {}, where)),
        **sizes,
    )
