"""A fold's folder, its training stamp and its stored result: whether training resumes, restarts
or is skipped, decided without importing torch."""

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment

STOCK_TRAINER = "nnUNetTrainer"
# Where nnU-Net's stock folder name held every model before recipes named their folders.
LEGACY_TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__2d"
STAMP_FILE = "cmrbias_stamp.txt"
RESULT_FILE = "cmrbias_result.json"
RECIPE_FILE = "cmrbias_recipe.json"
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
    seconds: float
    stamp: str
    skipped: bool = False
    # nnU-Net's exponential moving average of the foreground pseudo-Dice, one value per epoch.
    ema_pseudo_dice: list[float] = field(default_factory=list)
    # The partition (nnU-Net dataset) whose identical training this fold reuses; "" if its own.
    trained_by: str = ""
    precision: str = "fp32"  # the training step's: RunConditions.precision
    mitigation: str = "none"  # the bias mitigation strategy it trained with (docs/mitigation.md)
    # How it was trained (training_recipe): optimizer, rate, precision, schedule, augmentation,
    # seed, device type, versions; {} for a result stored before recipes were recorded.
    recipe: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConditions:
    """What changes a fold's weights besides its settings and data: decided by the machine."""

    precision: str  # "fp32"; "bf16" (CPU autocast); "fp16_amp" (nnU-Net's CUDA mixed precision)
    device_type: str  # torch's: "cpu", "cuda", "mps"
    augmentation_workers: int  # nnU-Net's augmentation processes; 0 = in the training process

    def fingerprint(self) -> str:
        """The conditions as one text for the training stamp."""
        return json.dumps(asdict(self), sort_keys=True)


def recipe_tag(settings: TrainingSettings) -> str:
    """How the settings' recipe departs from the stock one (nnU-Net's SGD at 0.01, the paper's
    500 x 250 schedule, fp32 on a CPU, nnU-Net's augmentation), as a readable folder-name part:
    e.g. `96x25_adamw0.01_cpubf16`; "" for the stock recipe."""
    stock = TrainingSettings()
    parts = []
    schedule = (settings.epochs, settings.iterations_per_epoch)
    if schedule != (stock.epochs, stock.iterations_per_epoch):
        parts.append(f"{schedule[0]}x{schedule[1]}")
    rate = 0.01 if settings.initial_lr is None else settings.initial_lr
    if settings.optimizer != stock.optimizer or rate != 0.01:
        parts.append(f"{settings.optimizer}{rate:g}")
    if settings.cpu_bf16:
        parts.append("cpubf16")
    if settings.augmentation != stock.augmentation:
        parts.append(settings.augmentation.replace("_", ""))
    return "_".join(parts)


def trainer_folder(settings: TrainingSettings) -> str:
    """The trainer folder of the settings' models, `<trainer>__<plans>__<configuration>` as
    nnU-Net names them: `nnUNetTrainer` for the stock recipe, `nnUNetTrainerCmrbias_<tag>`
    (recipe_tag) otherwise, so that a folder's name never claims nnU-Net's own recipe for
    another; the plans and configuration those of the settings' network."""
    tag = recipe_tag(settings)
    trainer = f"{STOCK_TRAINER}Cmrbias_{tag}" if tag else STOCK_TRAINER
    network = settings.network
    return f"{trainer}__{network.plans_identifier}__{network.configuration}"


def fold_folder(env: NnunetEnvironment, dataset: str, fold: int, trainer: str) -> Path:
    """Where nnU-Net writes one fold's checkpoints, logs and validation, in the trainer folder
    `trainer` (trainer_folder)."""
    return env.results / dataset / trainer / f"fold_{fold}"


def move_legacy_fold(
    env: NnunetEnvironment, dataset: str, fold: int, trainer: str, stamp: str
) -> bool:
    """Move a fold trained under the old stock folder name (LEGACY_TRAINER_FOLDER) into its
    recipe's folder `trainer`, once, when its stamp is this training's (the same settings, data
    and conditions: nothing else could have written it); with the plans and dataset.json the
    predictor reads. The old folder goes when no fold is left in it. True when moved."""
    legacy = env.results / dataset / LEGACY_TRAINER_FOLDER
    source, target = legacy / f"fold_{fold}", fold_folder(env, dataset, fold, trainer)
    stamp_file = source / STAMP_FILE
    if trainer == LEGACY_TRAINER_FOLDER or target.exists() or not stamp_file.is_file():
        return False
    if stamp_file.read_text() != stamp:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    for name in ("plans.json", "dataset.json"):
        if (legacy / name).is_file() and not (target.parent / name).is_file():
            shutil.copyfile(legacy / name, target.parent / name)
    source.rename(target)
    if not any(legacy.glob("fold_*")):
        shutil.rmtree(legacy)
    return True


def training_stamp(
    env: NnunetEnvironment,
    dataset: str,
    settings: TrainingSettings,
    conditions: RunConditions,
    mitigation: str = "",
) -> str:
    """Hash of everything a fold's training depends on: the plans (but the dataset's name), the
    splits, every training case's bytes, the schedule, the conditions it runs under (precision,
    device type, augmentation workers) and the mitigation's stamp (mitigation_stamp, "" for none).
    Same stamp and a final checkpoint -> nothing to retrain, in this partition or in another that
    drew the same training set."""
    digest = hashlib.sha256(settings.fingerprint().encode())
    digest.update(conditions.fingerprint().encode())
    if mitigation:  # only then: unmitigated trainings keep the stamps they had before mitigation
        digest.update(mitigation.encode())
    if not settings.network.is_default:  # the configuration trained, besides the plans
        digest.update(json.dumps(asdict(settings.network), sort_keys=True).encode())
    preprocessed = env.preprocessed / dataset
    plans = json.loads((preprocessed / plans_file_name(settings)).read_text())
    plans.pop("dataset_name", None)  # the partition's name: identical trainings share a stamp
    digest.update(json.dumps(plans, sort_keys=True).encode())
    digest.update((preprocessed / "splits_final.json").read_bytes())
    for folder in ("imagesTr", "labelsTr"):
        for path in sorted((env.raw / dataset / folder).iterdir()):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def plans_file_name(settings: TrainingSettings) -> str:
    """The plans file, in a preprocessed dataset, of the settings' network's planner."""
    return f"{settings.network.plans_identifier}.json"


def completed_result(folder: Path, stamp: str) -> FoldResult | None:
    """The stored result of a finished fold trained with this stamp, if any."""
    result_file = folder / RESULT_FILE
    if not (folder / FINAL_CHECKPOINT).is_file() or not result_file.is_file():
        return None
    stored = read_result(result_file)
    return replace(stored, skipped=True) if stored.stamp == stamp else None


def read_result(result_file: Path) -> FoldResult:
    """A stored FoldResult; keys of fields since removed (e.g. `progress_png`) are ignored."""
    stored = json.loads(result_file.read_text())
    known = {f.name for f in fields(FoldResult)}
    return FoldResult(**{k: v for k, v in stored.items() if k in known})


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


def training_recipe(
    settings: TrainingSettings,
    conditions: RunConditions,
    fold: int,
    initial_lr: float,
    mitigation: str,
    versions: dict[str, str],
) -> dict[str, object]:
    """How a fold is trained, as recorded beside its model and in its asset's metadata:
    `initial_lr` is the rate the trainer uses (nnU-Net's 0.01 when the settings give none), the
    seed the one the fold's generators start from (the settings' plus the fold; None: unseeded)."""
    return {
        "trainer": STOCK_TRAINER,
        "trainer_folder": trainer_folder(settings),
        "network": asdict(settings.network),
        "optimizer": settings.optimizer,
        "initial_lr": initial_lr,
        "precision": conditions.precision,
        "epochs": settings.epochs,
        "iterations_per_epoch": settings.iterations_per_epoch,
        "val_iterations_per_epoch": settings.val_iterations_per_epoch,
        "augmentation": settings.augmentation,
        "augmentation_workers": conditions.augmentation_workers,
        "seed": None if settings.seed is None else settings.seed + fold,
        "device_type": conditions.device_type,
        "mitigation": mitigation,
        "versions": dict(versions),
    }


def store_recipe(folder: Path, recipe: dict[str, object]) -> None:
    """Write the fold's recipe beside its checkpoint: to a temporary file, then renamed."""
    temporary = folder / f".{RECIPE_FILE}.tmp"
    temporary.write_text(json.dumps(recipe, indent=2))
    temporary.replace(folder / RECIPE_FILE)
