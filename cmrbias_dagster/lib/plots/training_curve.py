"""A fold's training curve sized for the Dagster UI: train and validation loss and the EMA
pseudo-Dice per epoch, about 600 x 360 px and a few tens of KB (nnU-Net's own progress.png is
3000 x 5400 px, about 1 MB, too heavy for every fold's metadata in the event log)."""

from collections.abc import Sequence

from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.panels import SMALL_FONT, figure_png

CURVE_INCHES = (6.0, 3.6)
CURVE_DPI = 100


def training_curve_figure(
    train_losses: Sequence[float],
    val_losses: Sequence[float],
    ema_pseudo_dice: Sequence[float],
) -> Figure:
    """Losses on the left axis, the EMA pseudo-Dice (0 to 1) on the right, against the epoch."""
    figure = Figure(figsize=CURVE_INCHES, layout="constrained")
    losses = figure.subplots()
    epochs = range(1, len(train_losses) + 1)
    losses.plot(epochs, train_losses, color="#3a7dc9", label="train loss")
    losses.plot(epochs[: len(val_losses)], val_losses, color="#e08a2c", label="val loss")
    losses.set_xlabel("epoch", fontsize=SMALL_FONT)
    losses.set_ylabel("loss", fontsize=SMALL_FONT)
    dice = losses.twinx()
    dice.plot(epochs[: len(ema_pseudo_dice)], ema_pseudo_dice, color="#5aa55a", label="EMA Dice")
    dice.set_ylim(0, 1)
    dice.set_ylabel("EMA pseudo-Dice", fontsize=SMALL_FONT)
    for axis in (losses, dice):
        axis.tick_params(labelsize=SMALL_FONT)
    handles = losses.get_lines() + dice.get_lines()
    losses.legend(handles=handles, fontsize=SMALL_FONT, loc="center right", framealpha=0.8)
    return figure


def training_curve_png(
    train_losses: Sequence[float],
    val_losses: Sequence[float],
    ema_pseudo_dice: Sequence[float],
) -> bytes:
    """The training curve as PNG bytes of CURVE_INCHES at CURVE_DPI (600 x 360 px)."""
    figure = training_curve_figure(train_losses, val_losses, ema_pseudo_dice)
    return figure_png(figure, dpi=CURVE_DPI)
