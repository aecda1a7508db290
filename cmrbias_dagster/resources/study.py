"""The study design, the active profile, and where the profile's outputs live."""

from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.study_design import Profile, StudyDesign, load_study_design

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STUDY_FILE = PROJECT_ROOT / "data" / "study.yaml"
DEFAULT_WORK_DIR = PROJECT_ROOT / "data" / "work"


class StudyResource(dg.ConfigurableResource):
    """Which study file and profile (`quick` on CPU, `paper` on GPU) a run uses."""

    study_file: str = str(DEFAULT_STUDY_FILE)
    profile: str = "quick"
    work_dir: str = str(DEFAULT_WORK_DIR)

    def design(self) -> StudyDesign:
        return load_study_design(Path(self.study_file))

    def settings(self) -> Profile:
        return self.design().profile(self.profile)

    def output_dir(self, *parts: str) -> Path:
        """A folder under the profile's work directory, created on first use."""
        path = Path(self.work_dir, self.profile, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
