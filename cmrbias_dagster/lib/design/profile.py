"""One profile of the study design: sizes, folds and its typed settings blocks."""

from dataclasses import field, replace
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, StrictInt

from .fields import EMPTY_IF_NONE, PositiveInt, StudyDesignError, design_model, typed
from .settings import (
    ConvergenceSettings,
    NetworkSettings,
    PlanEdits,
    PredictionSettings,
    ProbeSettings,
    SyntheticCohortSettings,
    TrainingSettings,
    check_plan_edits,
)


def _runs_or_auto(value: object) -> int | Literal["auto"]:
    # One rule for both forms: pydantic's union would report only the integer branch's error.
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer or 'auto'")
    if value < 1:
        raise ValueError("must be at least 1")
    return value


RunsOrAuto = Annotated[int | Literal["auto"], PlainValidator(_runs_or_auto)]


@design_model
class Profile:
    """A profile's sizes and settings blocks, as its entry under `profiles:` writes them."""

    name: str
    train_size: PositiveInt
    test_size: PositiveInt
    folds: Annotated[StrictInt, Field(ge=2)]
    # The first `trained_folds` cross-validation folds are trained and ensembled (None: all).
    trained_folds: StrictInt | None = None
    # Partitions `make study` runs at once, and nnU-Net steps at once on a CPU-only machine;
    # `auto`: from this machine's cores and memory (parallelism.resolve_parallel_runs).
    parallel_runs: RunsOrAuto = 1
    nnunet: Annotated[PlanEdits, EMPTY_IF_NONE] = PlanEdits()
    # nnU-Net's configuration and planner of every model (an experiment may choose its own).
    network: Annotated[NetworkSettings, EMPTY_IF_NONE] = NetworkSettings()
    training: Annotated[TrainingSettings, EMPTY_IF_NONE] = TrainingSettings()
    convergence: Annotated[ConvergenceSettings, EMPTY_IF_NONE] = ConvergenceSettings()
    prediction: Annotated[PredictionSettings, EMPTY_IF_NONE] = PredictionSettings()
    probes: Annotated[ProbeSettings, EMPTY_IF_NONE] = ProbeSettings()
    # None: the profile has no synthetic cohort (bring your own data).
    synthetic_cohort: SyntheticCohortSettings | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.trained_folds is None:
            object.__setattr__(self, "trained_folds", self.folds)
        if not 1 <= self.trained_folds <= self.folds:
            raise ValueError(
                f"field 'trained_folds' must be between 1 and 'folds' ({self.folds}), "
                f"got {self.trained_folds}"
            )
        if not self.training.network.is_default:
            raise ValueError(
                "block 'training' must not hold 'network'; write it as the profile's block "
                "'network' (or an experiment's field 'network')"
            )
        check_plan_edits(self.nnunet, self.network, "block 'network'")
        object.__setattr__(self, "training", replace(self.training, network=self.network))


def parse_profile(
    name: Any, raw: Any, ratios: tuple[int, ...], per_group: int, source: str
) -> Profile:
    """A profile whose sizes split exactly into two groups of `per_group` strata at every ratio."""
    where = f"{source}: profile {name!r}"
    profile = typed(Profile, raw, where, name=str(name))
    if profile.test_size % (2 * per_group):
        strata = "two groups x two held values" if per_group == 2 else "two groups"
        raise StudyDesignError(
            f"{where}: field 'test_size' must be divisible by {2 * per_group} ({strata}), "
            f"got {profile.test_size}"
        )
    train_size = profile.train_size
    for ratio in ratios:
        first, remainder = divmod(train_size * ratio, 100)
        if remainder or first % per_group or (train_size - first) % per_group:
            rule = "even integers so the held attribute is 50/50" if per_group == 2 else "integers"
            raise StudyDesignError(
                f"{where}: field 'train_size' {train_size} at ratio {ratio} gives "
                f"{train_size * ratio / 100:g} and {train_size - train_size * ratio / 100:g} "
                f"subjects per group; both must be {rule}"
            )
    return profile
