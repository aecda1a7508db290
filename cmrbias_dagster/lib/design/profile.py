"""One profile of the study design: sizes, folds and its typed settings blocks."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .fields import StudyDesignError, integer_field, mapping_field, required_field
from .parallelism import AUTO
from .settings import (
    ConvergenceSettings,
    PlanEdits,
    PredictionSettings,
    SyntheticCohortSettings,
    TrainingSettings,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    name: str
    train_size: int
    test_size: int
    folds: int
    # The first `trained_folds` cross-validation folds are trained and ensembled (all by default).
    trained_folds: int
    # Partitions `make study` runs at once, and nnU-Net steps at once on a CPU-only machine;
    # `auto`: from this machine's cores and memory (parallelism.resolve_parallel_runs).
    parallel_runs: int | Literal["auto"] = 1
    nnunet: PlanEdits = PlanEdits()
    training: TrainingSettings = TrainingSettings()
    convergence: ConvergenceSettings = ConvergenceSettings()
    prediction: PredictionSettings = PredictionSettings()
    # None: the profile has no synthetic cohort (bring your own data).
    synthetic_cohort: SyntheticCohortSettings | None = field(default=None, hash=False)


def parse_profile(
    name: Any, raw: Any, ratios: tuple[int, ...], per_group: int, source: str
) -> Profile:
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
    sizes["parallel_runs"] = _parallel_runs(entry.get("parallel_runs", 1), where)
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
    unknown = sorted(set(entry) - set(sizes) - set(BLOCKS))
    if unknown:
        known = ", ".join([*sizes, *BLOCKS])
        raise StudyDesignError(f"{where}: unknown field(s) {unknown}; known: {known}")
    blocks = {block: _block(entry, block, parse, where) for block, parse in BLOCKS.items()}
    return Profile(name=str(name), **blocks, **sizes)


def _parallel_runs(raw: Any, where: str) -> int | Literal["auto"]:
    if raw == AUTO:
        return AUTO
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise StudyDesignError(
            f"{where}: field 'parallel_runs' must be an integer or {AUTO!r}, got {raw!r}"
        )
    if raw < 1:
        raise StudyDesignError(f"{where}: field 'parallel_runs' must be at least 1, got {raw}")
    return raw


BLOCKS: dict[str, Callable[[Any], Any]] = {
    "nnunet": PlanEdits.from_mapping,
    "training": TrainingSettings.from_mapping,
    "convergence": ConvergenceSettings.from_mapping,
    "prediction": PredictionSettings.from_mapping,
    "synthetic_cohort": SyntheticCohortSettings.from_mapping,
}


def _block(entry: Any, block: str, parse: Callable[[Any], T], where: str) -> T | None:
    """A settings block typed by `parse`; errors name the file, profile, block and key."""
    raw = entry.get(block)
    if raw is None:
        return None if block == "synthetic_cohort" else parse({})
    try:
        return parse(mapping_field(raw, f"{where}: block {block!r}"))
    except StudyDesignError:
        raise
    except (TypeError, ValueError) as error:
        raise StudyDesignError(f"{where}: block {block!r}: {error}") from error
