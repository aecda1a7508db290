"""A study partition, one experiment x training ratio: the one codec of its Dagster key
(`<experiment>|<ratio>`), and what an asset needs of it: the experiment, the ratio, the repeat,
the seed of its draws, its nnU-Net dataset id and folder name, and the profile's training
settings seeded for it."""

from dataclasses import dataclass, replace

from .experiment import Experiment
from .fields import StudyDesignError
from .profile import Profile
from .settings import TrainingSettings
from .study import StudyDesign

# Dagster joins a multi-partition key's values in the alphabetical order of the dimension names:
# {experiment, ratio} gives "race_black|50".
KEY_SEPARATOR = "|"
# nnU-Net dataset ids of the study's partitions: base + 10 x experiment index + ratio index.
DATASET_ID_BASE = 500


class PartitionKeyError(StudyDesignError):
    """A partition key that is not `<experiment>|<ratio>` of the study design."""


@dataclass(frozen=True)
class StudyPartition:
    """One experiment x training ratio of the design, decoded once from its key."""

    experiment: Experiment
    ratio: int
    # The nnU-Net dataset the partition trains on: its id and folder name (Dataset512_sex_50).
    dataset_id: int
    dataset: str
    # The seed of the partition's training draw and folds (design seed, plus the repeat's step).
    draw_seed: int
    # The profile's training block, seeded for the partition's experiment (`seeded_training`).
    training: TrainingSettings

    @property
    def key(self) -> str:
        """The partition key as Dagster writes it, e.g. `race_black|50`."""
        return partition_key(self.experiment.name, self.ratio)

    @property
    def repeat(self) -> int:
        """Which draw of its experiment this is: 1, or r for `<experiment>_r<r>`."""
        return self.experiment.repeat


def partition_key(experiment: str, ratio: int) -> str:
    """The key of experiment x ratio, as Dagster writes it: `<experiment>|<ratio>`."""
    return f"{experiment}{KEY_SEPARATOR}{ratio}"


def split_partition_key(key: str) -> tuple[str, int]:
    """The experiment name and ratio of a key `<experiment>|<ratio>`; PartitionKeyError naming
    the key when it has another form."""
    experiment, separator, ratio = str(key).partition(KEY_SEPARATOR)
    if not separator or not experiment or not ratio.isdigit():
        raise PartitionKeyError(
            f"partition key {str(key)!r} is not '<experiment>{KEY_SEPARATOR}<ratio>' "
            "(e.g. 'race_black|50')"
        )
    return experiment, int(ratio)


def file_name_of_key(key: str) -> str:
    """A partition key (an experiment's, or experiment x ratio's) as a file-name part:
    `race_black|50` -> `race_black-50`, `race_black` unchanged."""
    return str(key).replace(KEY_SEPARATOR, "-")


def stable_dataset_id(experiment_index: int, ratio_index: int, base: int = DATASET_ID_BASE) -> int:
    """A dataset id fixed by the partition's position in the study: base + 10*experiment + ratio."""
    if experiment_index < 0 or not 0 <= ratio_index < 10:
        raise ValueError(
            f"need experiment_index >= 0 and 0 <= ratio_index < 10, "
            f"got {experiment_index} and {ratio_index}"
        )
    dataset_id = base + 10 * experiment_index + ratio_index
    if not 0 < dataset_id < 1000:
        raise ValueError(
            f"dataset id {dataset_id} (base {base}, experiment {experiment_index}, "
            f"ratio {ratio_index}) is outside nnU-Net's three-digit range 1..999"
        )
    return dataset_id


def dataset_name(dataset_id: int, experiment: str, ratio: int) -> str:
    """nnU-Net's folder name of one study partition's dataset, e.g. Dataset512_race_black_50."""
    if not 0 < dataset_id < 1000:
        raise ValueError(f"nnU-Net dataset ids have three digits (1..999), got {dataset_id}")
    return f"Dataset{dataset_id:03d}_{experiment}_{ratio}"


def seeded_training(
    design: StudyDesign, profile: Profile, experiment: str | None = None
) -> TrainingSettings:
    """The profile's training block, seeded from the design unless the profile sets a seed; for
    repeat r > 1 of an experiment (`experiment` named), that seed plus the repeat's step (the
    design's `draw_seed`); with the experiment's network when it chooses one, else the
    profile's."""
    training = profile.training
    seed = design.seed if training.seed is None else training.seed
    if experiment is None:
        return replace(training, seed=seed)
    seed += design.draw_seed(experiment) - design.seed
    network = design.experiment(experiment).network or training.network
    return replace(training, seed=seed, network=network)


def study_partition(design: StudyDesign, profile: Profile, key: str) -> StudyPartition:
    """The partition of `key` in the design, for the profile; PartitionKeyError naming the key
    and what the design holds when its experiment or ratio is not the design's."""
    name, ratio = split_partition_key(key)
    if name not in design.experiment_names:
        raise PartitionKeyError(
            f"partition key {str(key)!r}: unknown experiment {name!r}; "
            f"known: {design.experiment_names}"
        )
    if ratio not in design.ratios:
        raise PartitionKeyError(
            f"partition key {str(key)!r}: ratio {ratio} is not one of {list(design.ratios)}"
        )
    dataset_id = stable_dataset_id(design.experiment_names.index(name), design.ratios.index(ratio))
    return StudyPartition(
        experiment=design.experiment(name),
        ratio=ratio,
        dataset_id=dataset_id,
        dataset=dataset_name(dataset_id, name, ratio),
        draw_seed=design.draw_seed(name),
        training=seeded_training(design, profile, name),
    )


def study_partitions(design: StudyDesign, profile: Profile) -> list[StudyPartition]:
    """Every partition of the design, experiments in file order, each at every ratio."""
    return [
        study_partition(design, profile, partition_key(name, ratio))
        for name in design.experiment_names
        for ratio in design.ratios
    ]
