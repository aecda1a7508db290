"""The study design (data/study.yaml): experiments, training ratios and per-profile sizes, and the
repeated draws of each experiment (`repeats`) expanded into experiments of their own."""

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .fields import (
    StudyDesignError,
    integer_field,
    mapping_field,
    pair_field,
    ratios_field,
    required_field,
    text_field,
)
from .mitigation import EXPERIMENT_KEYS, Mitigation, parse_mitigation
from .profile import Profile, parse_profile

# Experiment names become Dagster partition keys; multi-partition keys are joined with "|".
_EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COMPARISON_KEYS = ("attribute", "groups", "held_attribute", "held_values")
# Repeat r > 1 of an experiment draws and trains with the design seed + 1000 x (r - 1); training
# adds the fold (0..9) to its seed, so the repeats' seeds never meet.
REPEAT_SEED_STEP = 1000


@dataclass(frozen=True)
class Experiment:
    name: str
    attribute: str
    groups: tuple[str, str]
    # Optional: a cohort such as ACDC has one attribute only (pathology) and nothing to hold.
    held_attribute: str | None = None
    held_values: tuple[str, str] | None = None
    mitigation: Mitigation = Mitigation()
    # The experiment this one is a training variant of (same comparison, same training sets).
    varies: str | None = None
    # Repeated draws: repeat 1 keeps the file's name, repeat r > 1 is `<base>_r<r>`; `base` is
    # the file's name (empty here means this experiment's own name).
    repeat: int = 1
    base: str = ""

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)

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
class StudyDesign:
    seed: int
    ratios: tuple[int, ...]
    experiments: tuple[Experiment, ...]
    profiles: tuple[Profile, ...]
    # Draws per experiment of the file; `experiments` holds every repeat (repeat_experiments).
    repeats: int = 1

    @property
    def experiment_names(self) -> list[str]:
        """Names of the experiments in file order."""
        return [experiment.name for experiment in self.experiments]

    def group_order(self) -> dict[str, tuple[str, str]]:
        """Each experiment's two groups, the first being the one whose training share varies."""
        return {experiment.name: experiment.groups for experiment in self.experiments}

    def experiment(self, name: str) -> Experiment:
        """The experiment called `name`; StudyDesignError listing the known names otherwise."""
        for experiment in self.experiments:
            if experiment.name == name:
                return experiment
        raise StudyDesignError(f"unknown experiment {name!r}; known: {self.experiment_names}")

    def draw_seed(self, name: str) -> int:
        """The seed of experiment `name`'s training draws, folds and training: the design seed
        for repeat 1, plus REPEAT_SEED_STEP per further repeat. Test sets keep the design seed."""
        return self.seed + REPEAT_SEED_STEP * (self.experiment(name).repeat - 1)

    def profile(self, name: str) -> Profile:
        """The profile called `name`; StudyDesignError listing the known names otherwise."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        known = [profile.name for profile in self.profiles]
        raise StudyDesignError(f"unknown profile {name!r}; known: {known}")


def load_study_design(path: Path) -> StudyDesign:
    """Read and validate the study design YAML file at `path`: once per process, and again only
    when the file changes."""
    path = Path(path)
    return _load_cached(str(path), path.stat().st_mtime_ns, path.stat().st_size)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, modified_ns: int, size: int) -> StudyDesign:
    with open(path, encoding="utf-8") as handle:
        mapping = yaml.safe_load(handle)
    return parse_study_design(mapping, source=path)


def parse_study_design(mapping: Mapping[str, Any], source: str = "study design") -> StudyDesign:
    """Validate a parsed study design mapping; errors name `source`, the entry and the field."""
    top = mapping_field(mapping, source)
    seed = integer_field(required_field(top, "seed", source), "seed", source)
    ratios = ratios_field(required_field(top, "ratios", source), source)
    experiments = mapping_field(
        required_field(top, "experiments", source), f"{source}: field 'experiments'"
    )
    profiles = mapping_field(required_field(top, "profiles", source), f"{source}: field 'profiles'")
    repeats = repeats_field(top.get("repeats", 1), source)
    if not experiments or not profiles:
        raise StudyDesignError(
            f"{source}: 'experiments' and 'profiles' must each list at least one"
        )
    parsed = tuple(_experiment(name, raw, source) for name, raw in experiments.items())
    _check_variants(parsed, source)
    # Sizes must suit the strictest experiment: one with a held attribute halves every group.
    per_group = 2 if any(experiment.held_attribute for experiment in parsed) else 1
    return StudyDesign(
        seed=seed,
        ratios=ratios,
        experiments=repeat_experiments(parsed, repeats, source),
        profiles=tuple(
            parse_profile(name, raw, ratios, per_group, source) for name, raw in profiles.items()
        ),
        repeats=repeats,
    )


def repeats_field(raw: Any, source: str) -> int:
    """The top-level `repeats`: draws per experiment, an integer >= 1."""
    repeats = integer_field(raw, "repeats", source)
    if repeats < 1:
        raise StudyDesignError(f"{source}: field 'repeats' must be at least 1, got {repeats}")
    return repeats


def repeat_experiments(
    experiments: tuple[Experiment, ...], repeats: int, source: str = "study design"
) -> tuple[Experiment, ...]:
    """The file's experiments (repeat 1, unchanged), then repeat 2 of each as `<name>_r2`, ...,
    up to `repeats`: appended, so raising `repeats` keeps every existing partition and dataset
    id. A variant's repeat r varies its baseline's repeat r (the same training draws)."""
    expanded = list(experiments)
    for repeat in range(2, repeats + 1):
        expanded += [_repeated(experiment, repeat) for experiment in experiments]
    names = [experiment.name for experiment in expanded]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise StudyDesignError(
            f"{source}: field 'repeats' {repeats} names repeats {clashes}, which the file already "
            "uses for experiments; rename those experiments"
        )
    return tuple(expanded)


def _repeated(experiment: Experiment, repeat: int) -> Experiment:
    varies = experiment.varies
    return replace(
        experiment,
        name=f"{experiment.name}_r{repeat}",
        varies=None if varies is None else f"{varies}_r{repeat}",
        repeat=repeat,
    )


def _experiment(name: Any, raw: Any, source: str) -> Experiment:
    where = f"{source}: experiment {name!r}"
    if not isinstance(name, str) or not _EXPERIMENT_NAME.match(name):
        raise StudyDesignError(f"{where}: name must match {_EXPERIMENT_NAME.pattern}")
    entry = mapping_field(raw, where)
    # A misspelt `mitigation` must not quietly train an unmitigated twin.
    unknown = sorted(set(entry) - {*_COMPARISON_KEYS, *EXPERIMENT_KEYS})
    if unknown:
        known = ", ".join((*_COMPARISON_KEYS, *EXPERIMENT_KEYS))
        raise StudyDesignError(f"{where}: unknown field(s) {unknown}; known: {known}")
    varies = entry.get("varies")
    variant = {
        "mitigation": parse_mitigation(entry, where),
        "varies": None if varies is None else text_field(varies, "varies", where),
    }
    return replace(_comparison(name, entry, where), **variant)


def _comparison(name: str, entry: Mapping[str, Any], where: str) -> Experiment:
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


def _check_variants(experiments: tuple[Experiment, ...], source: str) -> None:
    """A variant names an experiment of the file with the same comparison (so the same training
    sets are drawn) and differs from it in its mitigation."""
    by_name = {experiment.name: experiment for experiment in experiments}
    for experiment in experiments:
        if experiment.varies is None:
            continue
        where = f"{source}: experiment {experiment.name!r}: field 'varies'"
        base = by_name.get(experiment.varies)
        if base is None or base is experiment:
            others = [name for name in by_name if name != experiment.name]
            raise StudyDesignError(
                f"{where} names {experiment.varies!r}, which is not another experiment of the "
                f"file; known: {others}"
            )
        differing = [
            key for key in _COMPARISON_KEYS if getattr(base, key) != getattr(experiment, key)
        ]
        if differing:
            raise StudyDesignError(
                f"{where}: {experiment.varies!r} compares other groups (differs in "
                f"{', '.join(differing)}); a variant keeps the comparison and changes the training"
            )
        if base.mitigation == experiment.mitigation:
            raise StudyDesignError(
                f"{where}: {experiment.varies!r} already trains with mitigation "
                f"{experiment.mitigation.strategy!r}; a variant must change it"
            )
