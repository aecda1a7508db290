"""A fold's folder, its training stamp and its stored result: whether training resumes, restarts
or is skipped, decided without importing torch."""

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment

TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__2d"
STAMP_FILE = "cmrbias_stamp.txt"
RESULT_FILE = "cmrbias_result.json"
FINAL_CHECKPOINT = "checkpoint_final.pth"
LATEST_CHECKPOINT = "checkpoint_latest.pth"


@dataclass(frozen=True)
class FoldResult:
    fold: int
    device: str
    start_epoch: int  # 0 for a fresh training, k when resumed after k finished epochs
    epochs_run: int
    train_losses: list[float]
    val_losses: list[float]
    pseudo_dice: list[float]  # per class at the last epoch (LVBP, LVM, RVBP)
    mean_epoch_seconds: float
    validation_dice: dict[str, float]  # nnU-Net's final validation: per class and "mean"
    checkpoint: str
    checkpoint_bytes: int
    progress_png: str
    seconds: float
    stamp: str
    skipped: bool = False


def fold_folder(env: NnunetEnvironment, dataset: str, fold: int) -> Path:
    """Where nnU-Net writes one fold's checkpoints, logs and validation."""
    return env.results / dataset / TRAINER_FOLDER / f"fold_{fold}"


def training_stamp(env: NnunetEnvironment, dataset: str, settings: TrainingSettings) -> str:
    """Hash of everything a fold's training depends on: the plans, the splits, every training
    case's bytes and the schedule. Same stamp and a final checkpoint -> nothing to retrain."""
    digest = hashlib.sha256(settings.fingerprint().encode())
    preprocessed = env.preprocessed / dataset
    for name in ("nnUNetPlans.json", "splits_final.json"):
        digest.update((preprocessed / name).read_bytes())
    for folder in ("imagesTr", "labelsTr"):
        for path in sorted((env.raw / dataset / folder).iterdir()):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def completed_result(folder: Path, stamp: str) -> FoldResult | None:
    """The stored result of a finished fold trained with this stamp, if any."""
    result_file = folder / RESULT_FILE
    if not (folder / FINAL_CHECKPOINT).is_file() or not result_file.is_file():
        return None
    stored = json.loads(result_file.read_text())
    return FoldResult(**{**stored, "skipped": True}) if stored["stamp"] == stamp else None


def prepare_folder(folder: Path, stamp: str) -> bool:
    """True when a resumable checkpoint of this stamp exists; else start in an empty folder."""
    stamp_file = folder / STAMP_FILE
    latest = folder / LATEST_CHECKPOINT
    if latest.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return True
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stamp_file.write_text(stamp)
    return False


def store_result(folder: Path, result: FoldResult) -> None:
    """Write the fold's result beside its checkpoint: to a temporary file, then renamed."""
    temporary = folder / f".{RESULT_FILE}.tmp"
    temporary.write_text(json.dumps(asdict(result), indent=2))
    temporary.replace(folder / RESULT_FILE)
