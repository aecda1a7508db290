"""What a fold's training reports after each epoch, read from nnU-Net's logger: a small picklable
record for whoever listens (the Dagster event log, a bench script), and its one-line text."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochReport:
    fold: int
    epoch: int  # epochs finished, counting those before a resume (1 after the first)
    epochs: int  # the schedule's total
    train_loss: float
    val_loss: float
    pseudo_dice: dict[str, float]  # per class name, on this epoch's validation batches
    ema_pseudo_dice: float  # nnU-Net's moving average of the foreground pseudo-Dice
    seconds: float  # this epoch's training and validation, as nnU-Net times it
    # The remaining epochs at this process's pace so far (final validation not included).
    eta_seconds: float


EpochListener = Callable[[EpochReport], None]


def epoch_report(
    history: Mapping[str, Sequence[float] | Sequence[Sequence[float]]],
    fold: int,
    epochs: int,
    first_epoch: int,
    classes: Sequence[str],
    now: float,
) -> EpochReport:
    """The report of the last epoch in nnU-Net's logged `history` (its logger's lists, one entry
    per epoch); `first_epoch` is where this process started, `now` a time.time() value."""
    starts, ends = history["epoch_start_timestamps"], history["epoch_end_timestamps"]
    finished = len(ends)
    run_here = max(finished - first_epoch, 1)
    per_epoch = (now - starts[first_epoch]) / run_here
    return EpochReport(
        fold=fold,
        epoch=finished,
        epochs=epochs,
        train_loss=float(history["train_losses"][-1]),
        val_loss=float(history["val_losses"][-1]),
        pseudo_dice={
            name: float(value)
            for name, value in zip(classes, history["dice_per_class_or_region"][-1], strict=False)
        },
        ema_pseudo_dice=float(history["ema_fg_dice"][-1]),
        seconds=float(ends[-1] - starts[-1]),
        eta_seconds=max(epochs - finished, 0) * per_epoch,
    )


def epoch_line(report: EpochReport) -> str:
    """One log line of key=value pairs, e.g. `fold 0 epoch 2/3: train_loss=0.8123 ...`."""
    dice = " ".join(f"pseudo_dice_{name}={v:.4f}" for name, v in report.pseudo_dice.items())
    return (
        f"fold {report.fold} epoch {report.epoch}/{report.epochs}: "
        f"train_loss={report.train_loss:.4f} val_loss={report.val_loss:.4f} {dice} "
        f"ema_pseudo_dice={report.ema_pseudo_dice:.4f} "
        f"epoch_seconds={report.seconds:.1f} eta_seconds={report.eta_seconds:.0f}"
    )
