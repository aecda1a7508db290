"""The study design, the active profile, and where each partition's files live.

One owner for these facts: assets ask the study resource where partition P's nnU-Net dataset,
predictions, figures and report are, and decode a partition key once into a `StudyPartition`.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.design.profile import Profile
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study import (
    DEFAULT_STUDY_FILE,
    StudyDesign,
    StudyDesignError,
    load_study_design,
)
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment, dataset_name, stable_dataset_id

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK_DIR = PROJECT_ROOT / "data" / "work"


@dataclass(frozen=True)
class StudyPartition:
    """One experiment x training ratio, with its nnU-Net dataset id and folder name."""

    experiment: str
    ratio: int
    dataset_id: int
    dataset: str

    @property
    def key(self) -> str:
        """The partition key as Dagster writes it: `<experiment>|<ratio>`."""
        return f"{self.experiment}|{self.ratio}"


class StudyResource(dg.ConfigurableResource):
    """Which study file and profile (`quick` on CPU, `paper` on GPU) a run uses, and where the
    profile's outputs live (`work_dir/<profile>/...`)."""

    study_file: str = str(DEFAULT_STUDY_FILE)
    profile: str = "quick"
    work_dir: str = str(DEFAULT_WORK_DIR)

    def design(self) -> StudyDesign:
        """The study design, read once per process (again only when the file changes)."""
        return load_study_design(Path(self.study_file))

    def settings(self) -> Profile:
        return self.design().profile(self.profile)

    def training_settings(self, experiment: str | None = None) -> TrainingSettings:
        """The profile's training block, seeded from the design unless the profile sets a seed;
        for repeat r > 1 of an experiment (`experiment` named), that seed plus the repeat's step
        (the design's `draw_seed`)."""
        training, design = self.settings().training, self.design()
        seed = design.seed if training.seed is None else training.seed
        if experiment is not None:
            seed += design.draw_seed(experiment) - design.seed
        return replace(training, seed=seed)

    def output_dir(self, *parts: str) -> Path:
        """A folder under the profile's work directory, created on first use."""
        path = Path(self.work_dir, self.profile, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def partition(self, partition_key: str) -> StudyPartition:
        """The experiment x ratio of a study partition key (`<experiment>|<ratio>`)."""
        by_dimension = getattr(partition_key, "keys_by_dimension", None)
        if by_dimension is None:
            experiment, _, ratio_text = str(partition_key).partition("|")
        else:
            experiment, ratio_text = by_dimension["experiment"], by_dimension["ratio"]
        design = self.design()
        if experiment not in design.experiment_names or not ratio_text.isdigit():
            raise StudyDesignError(f"{partition_key!r} is not a partition of {self.study_file}")
        ratio = int(ratio_text)
        if ratio not in design.ratios:
            raise StudyDesignError(f"ratio {ratio} of {partition_key!r} is not in {design.ratios}")
        dataset_id = stable_dataset_id(
            design.experiment_names.index(experiment), design.ratios.index(ratio)
        )
        return StudyPartition(
            experiment, ratio, dataset_id, dataset_name(dataset_id, experiment, ratio)
        )

    def nnunet_environment(self) -> NnunetEnvironment:
        """The profile's nnU-Net folders under work_dir/<profile>/nnunet/."""
        base = self.output_dir("nnunet")
        return NnunetEnvironment(base / "raw", base / "preprocessed", base / "results")

    def predictions_folder(self, partition: StudyPartition) -> Path:
        """A partition's ensemble predictions: work_dir/<profile>/predictions/<dataset>/."""
        return self.output_dir("predictions") / partition.dataset

    def tables_folder(self) -> Path:
        """Where the analysis tables are exported as CSV and LaTeX."""
        return self.output_dir("tables")

    def figure_file(self, name: str) -> Path:
        """A figure's PNG: work_dir/<profile>/figures/<name>.png."""
        return self.output_dir("figures") / f"{name}.png"

    def report_file(self) -> Path:
        """The study report: work_dir/<profile>/report/study_report.html."""
        return self.output_dir("report") / "study_report.html"
