"""Per-epoch reports read from nnU-Net's logged lists, and their log line; the fold's small
training curve PNG for the UI."""

import io

import pytest
from PIL import Image

from cmrbias_dagster.lib.nnunet.epoch_reports import epoch_line, epoch_report
from cmrbias_dagster.lib.plots.training_curve import training_curve_png

CLASSES = ("LVBP", "LVM", "RVBP")


def logged_history(epochs_done: int, epoch_seconds: float = 10.0) -> dict[str, list]:
    """nnU-Net's logger lists after `epochs_done` epochs, each epoch_seconds long."""
    starts = [1000.0 + epoch_seconds * e for e in range(epochs_done)]
    return {
        "train_losses": [1.0 - 0.1 * e for e in range(epochs_done)],
        "val_losses": [0.9 - 0.1 * e for e in range(epochs_done)],
        "dice_per_class_or_region": [[0.1 * e, 0.2 * e, 0.05 * e] for e in range(epochs_done)],
        "ema_fg_dice": [0.03 * e for e in range(epochs_done)],
        "epoch_start_timestamps": starts,
        "epoch_end_timestamps": [start + epoch_seconds - 1 for start in starts],
    }


def test_epoch_report_reads_the_last_epoch_and_estimates_the_rest() -> None:
    history = logged_history(3)
    report = epoch_report(history, fold=1, epochs=10, first_epoch=0, classes=CLASSES, now=1030.0)
    assert (report.fold, report.epoch, report.epochs) == (1, 3, 10)
    assert report.train_loss == pytest.approx(0.8) and report.val_loss == pytest.approx(0.7)
    assert report.pseudo_dice == pytest.approx({"LVBP": 0.2, "LVM": 0.4, "RVBP": 0.1})
    assert report.ema_pseudo_dice == pytest.approx(0.06)
    assert report.seconds == pytest.approx(9.0)
    assert report.eta_seconds == pytest.approx(70.0)  # 7 epochs left at 10 s each


def test_a_resumed_training_paces_its_eta_on_its_own_epochs() -> None:
    """Epochs 0-3 ran before the resume at 10 s each; the two run here took 50 s each."""
    history = logged_history(4)
    history["epoch_start_timestamps"] += [2000.0, 2050.0]
    history["epoch_end_timestamps"] += [2049.0, 2099.0]
    for key in ("train_losses", "val_losses", "ema_fg_dice"):
        history[key] += [0.5, 0.5]
    history["dice_per_class_or_region"] += [[0.5] * 3, [0.5] * 3]
    report = epoch_report(history, fold=0, epochs=8, first_epoch=4, classes=CLASSES, now=2100.0)
    assert report.epoch == 6 and report.seconds == pytest.approx(49.0)
    assert report.eta_seconds == pytest.approx(100.0)


def test_the_last_epoch_has_no_eta_and_the_line_names_every_number() -> None:
    report = epoch_report(
        logged_history(3), fold=0, epochs=3, first_epoch=0, classes=CLASSES, now=1030.0
    )
    assert report.eta_seconds == 0.0
    assert epoch_line(report) == (
        "fold 0 epoch 3/3: train_loss=0.8000 val_loss=0.7000 pseudo_dice_LVBP=0.2000 "
        "pseudo_dice_LVM=0.4000 pseudo_dice_RVBP=0.1000 ema_pseudo_dice=0.0600 "
        "epoch_seconds=9.0 eta_seconds=0"
    )


@pytest.mark.parametrize("epochs", [1, 3, 1000])
def test_training_curve_png_is_small_and_sized_for_the_ui(epochs: int) -> None:
    losses = [1.0 / (1 + e) for e in range(epochs)]
    dice = [1.0 - loss for loss in losses]
    png = training_curve_png(losses, [loss * 1.1 for loss in losses], dice)
    assert Image.open(io.BytesIO(png)).size == (600, 360)
    assert len(png) < 60_000
