"""The study design (data/study.yaml): experiments, training ratios and per-profile sizes, and the
repeated draws of each experiment (`repeats`) expanded into experiments of their own."""

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, StrictInt

from .external import ExternalCohort, parse_external_test
from .fields import StudyDesignError, Text, design_model, typed
from .mitigation import EXPERIMENT_KEYS, Mitigation, parse_mitigation
from .profile import Profile, parse_profile
from .settings import NetworkSettings, SyntheticCohortSettings, check_plan_edits

# The design a code location, the CLI and the benchmarks read unless told another file.
DEFAULT_STUDY_FILE = Path(__file__).resolve().parents[3] / "data" / "study.yaml"
# Experiment names become Dagster partition keys; multi-partition keys are joined with "|".
_EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COMPARISON_KEYS = ("attribute", "groups", "held_attribute", "held_values")
# An experiment's own network (a block like a profile's `network`), beside its mitigation keys.
_NETWORK_KEY = "network"
# Repeat r > 1 of an experiment draws and trains with the design seed + 1000 x (r - 1); training
# adds the fold (0..9) to its seed, so the repeats' seeds never meet.
REPEAT_SEED_STEP = 1000


def _two_distinct(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) != 2 or len(set(values)) != 2:
        raise ValueError("must list two distinct values")
    return values


Pair = Annotated[
    tuple[Text, ...],
    AfterValidator(_two_distinct),
    Field(description="must list two distinct values"),
]


def _ratios(ratios: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 0 <= ratio <= 100 for ratio in ratios):
        raise ValueError("must lie in [0, 100]")
    if list(ratios) != sorted(set(ratios)):
        raise ValueError("must be unique and ascending")
    return ratios


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


# One DSC point: below the ~1-point group gaps the study reads, above the model noise's 0.2-0.3.
DEFAULT_EQUIVALENCE_MARGIN = 0.01


@dataclass(frozen=True)
class StudyDesign:
    seed: int
    ratios: tuple[int, ...]
    experiments: tuple[Experiment, ...]
    profiles: tuple[Profile, ...]
    # Draws per experiment of the file; `experiments` holds every repeat (repeat_experiments).
    repeats: int = 1
    # A difference whose 95 % CI lies inside +-margin (DSC) is called equivalent (two_level.py).
    equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN
    # Second cohorts the models also segment, never trained on (lib/design/external.py).
    external_test: tuple[ExternalCohort, ...] = ()

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


@design_model
class _DesignFile:
    """The top level of the file; its experiments and profiles are typed entry by entry."""

    seed: StrictInt
    ratios: Annotated[tuple[StrictInt, ...], Field(min_length=1), AfterValidator(_ratios)]
    experiments: dict[Any, Any]
    profiles: dict[Any, Any]
    # Draws per experiment: every experiment is drawn and trained `repeats` times.
    repeats: Annotated[StrictInt, Field(ge=1)] = 1
    equivalence_margin: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_EQUIVALENCE_MARGIN
    external_test: Any = None


def load_study_design(path: Path = DEFAULT_STUDY_FILE) -> StudyDesign:
    """Read and validate the study design YAML file at `path`: once per process (whatever name
    reaches the file), and again only when the file changes."""
    return _parsed(*_file_version(path))


def load_synthetic_cohort(path: Path, profile: str) -> tuple[SyntheticCohortSettings, int]:
    """Profile `profile`'s synthetic_cohort block and the design's seed, from the same read of
    the file as `load_study_design` but without checking the rest of the design: the cohort
    generator runs before a study's experiments and sizes need to be written."""
    version = _file_version(path)
    where, top = version[0], _read(*version)
    top = top if isinstance(top, Mapping) else {}
    profiles = top.get("profiles") or {}
    if profile not in profiles:
        raise StudyDesignError(f"{where}: unknown profile {profile!r}; known: {sorted(profiles)}")
    seed = top.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StudyDesignError(f"{where}: field 'seed' must be an integer, got {seed!r}")
    block = (profiles[profile] or {}).get("synthetic_cohort")
    if block is None:
        raise StudyDesignError(f"{where}: profile {profile!r} has no synthetic_cohort block")
    where = f"{where}: profile {profile!r}: block 'synthetic_cohort'"
    return typed(SyntheticCohortSettings, block, where, "synthetic_cohort setting"), seed


def _file_version(path: Path) -> tuple[str, int, int]:
    """The file's resolved path, modification time and size: the key of the caches below."""
    resolved = Path(path).resolve()
    status = resolved.stat()
    return str(resolved), status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=16)
def _read(path: str, modified_ns: int, size: int) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.lru_cache(maxsize=16)
def _parsed(path: str, modified_ns: int, size: int) -> StudyDesign:
    return parse_study_design(_read(path, modified_ns, size), source=path)


def parse_study_design(mapping: Mapping[str, Any], source: str = "study design") -> StudyDesign:
    """Validate a parsed study design mapping; errors name `source`, the entry and the field."""
    top = typed(_DesignFile, mapping, source)
    if not top.experiments or not top.profiles:
        raise StudyDesignError(
            f"{source}: 'experiments' and 'profiles' must each list at least one"
        )
    parsed = tuple(_experiment(name, raw, source) for name, raw in top.experiments.items())
    _check_variants(parsed, source)
    # Sizes must suit the strictest experiment: one with a held attribute halves every group.
    per_group = 2 if any(experiment.held_attribute for experiment in parsed) else 1
    profiles = tuple(
        parse_profile(name, raw, top.ratios, per_group, source)
        for name, raw in top.profiles.items()
    )
    _check_networks(parsed, profiles, source)
    return StudyDesign(
        seed=top.seed,
        ratios=top.ratios,
        experiments=repeat_experiments(parsed, top.repeats, source),
        profiles=profiles,
        repeats=top.repeats,
        equivalence_margin=top.equivalence_margin,
        external_test=parse_external_test(top.external_test, source),
    )


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
    if not isinstance(raw, Mapping):
        raise StudyDesignError(f"{where}: expected a mapping, got {type(raw).__name__}")
    # A misspelt `mitigation` must not quietly train an unmitigated twin.
    unknown = sorted(set(raw) - {*_COMPARISON_KEYS, *EXPERIMENT_KEYS, _NETWORK_KEY})
    if unknown:
        known = ", ".join((*_COMPARISON_KEYS, *EXPERIMENT_KEYS, _NETWORK_KEY))
        raise StudyDesignError(f"{where}: unknown field(s) {unknown}; known: {known}")
    comparison = {key: raw[key] for key in (*_COMPARISON_KEYS, "varies") if key in raw}
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


def _check_networks(
    experiments: tuple[Experiment, ...], profiles: tuple[Profile, ...], source: str
) -> None:
    """Every profile's plan edits fit the network each experiment chooses."""
    for experiment in experiments:
        if experiment.network is None:
            continue
        for profile in profiles:
            where = (
                f"{source}: experiment {experiment.name!r}: field 'network' "
                f"(profile {profile.name!r})"
            )
            try:
                check_plan_edits(profile.nnunet, experiment.network, where)
            except ValueError as error:
                raise StudyDesignError(str(error)) from None


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
        if base.mitigation == experiment.mitigation and base.network == experiment.network:
            raise StudyDesignError(
                f"{where}: {experiment.varies!r} already trains with mitigation "
                f"{experiment.mitigation.label!r} and the same network; a variant must change "
                "one of them"
            )
