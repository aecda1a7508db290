"""The study design (data/study.yaml): experiments, training ratios and per-profile sizes, and the
repeated draws of each experiment (`repeats`) expanded into experiments of their own."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt

from .experiment import COMPARISON_KEYS, Experiment, parse_experiment
from .external import ExternalCohort, parse_external_test
from .fields import StudyDesignError, design_model, typed
from .profile import Profile, parse_profile
from .settings import check_plan_edits

# Repeat r > 1 of an experiment draws and trains with the design seed + 1000 x (r - 1); training
# adds the fold (0..9) to its seed, so the repeats' seeds never meet.
REPEAT_SEED_STEP = 1000


def _ratios(ratios: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 0 <= ratio <= 100 for ratio in ratios):
        raise ValueError("must lie in [0, 100]")
    if list(ratios) != sorted(set(ratios)):
        raise ValueError("must be unique and ascending")
    return ratios


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


def parse_study_design(mapping: Mapping[str, Any], source: str = "study design") -> StudyDesign:
    """Validate a parsed study design mapping; errors name `source`, the entry and the field."""
    top = typed(_DesignFile, mapping, source)
    if not top.experiments or not top.profiles:
        raise StudyDesignError(
            f"{source}: 'experiments' and 'profiles' must each list at least one"
        )
    parsed = tuple(parse_experiment(name, raw, source) for name, raw in top.experiments.items())
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
            key for key in COMPARISON_KEYS if getattr(base, key) != getattr(experiment, key)
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
