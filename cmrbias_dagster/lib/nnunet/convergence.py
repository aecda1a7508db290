"""Whether a trained fold's curves reached a plateau under its schedule (the `converged` check),
judged from its per-epoch curves, and the table of every stored fold's verdict. Reads the stored
results only: no torch, no nnunetv2."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.design.settings import ConvergenceSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import (
    FINAL_CHECKPOINT,
    RESULT_FILE,
    FoldResult,
    fold_folder,
    read_result,
)

# The thresholds are decimals: a change equal to one in decimal (0.905 - 0.9 against 0.005) must
# pass although its binary difference lies a few ulps above.
ROUNDING = 1e-12

TABLE_SCHEMA = {
    "experiment": pl.String,
    "ratio": pl.Int64,
    "fold": pl.Int64,
    "passed": pl.Boolean,
    "dice_gain": pl.Float64,
    "loss_drop": pl.Float64,
    "final_ema_dice": pl.Float64,
    "epochs": pl.Int64,
    "reason": pl.String,
}


@dataclass(frozen=True)
class ConvergenceVerdict:
    """The check's outcome; gains and drops are None when the curve is too short to judge."""

    passed: bool
    dice_gain: float | None
    loss_drop: float | None
    window_epochs: int
    final_ema_dice: float | None
    reason: str


def window_epochs(epochs: int, settings: ConvergenceSettings) -> int:
    """How many last epochs form the window: the `window` share, rounded up, and at least
    `min_epochs`."""
    return max(settings.min_epochs, math.ceil(settings.window * epochs - 1e-9))


def convergence_verdict(
    ema_pseudo_dice: Sequence[float], train_losses: Sequence[float], settings: ConvergenceSettings
) -> ConvergenceVerdict:
    """Passed when, over the window, the EMA pseudo-Dice moved (up or down) by at most
    `max_dice_gain` and the training loss by at most `max_loss_drop`; a curve shorter than the
    window fails. A pass means the curves reached a plateau under their schedule, not that the
    model is trained enough: a longer schedule can still raise a plateaued model's scores."""
    epochs = min(len(ema_pseudo_dice), len(train_losses))
    width = window_epochs(epochs, settings)
    final = float(ema_pseudo_dice[-1]) if ema_pseudo_dice else None
    if epochs < width:
        reason = (
            f"too short to judge: {epochs} epoch(s) recorded, the window needs {width}"
            if epochs
            else "no per-epoch curve stored (trained before curves were recorded): retrain"
        )
        return ConvergenceVerdict(False, None, None, width, final, reason)
    dice = [float(v) for v in ema_pseudo_dice[-width:]]
    losses = [float(v) for v in train_losses[-width:]]
    if not all(math.isfinite(v) for v in (*dice, *losses)):
        return ConvergenceVerdict(
            False, None, None, width, final, f"non-finite values in the last {width} epochs"
        )
    half = width // 2
    dice_gain = dice[-1] - dice[0]
    # Means of the halves, not two single epochs: one noisy epoch must not decide.
    loss_drop = sum(losses[:half]) / half - sum(losses[-half:]) / half
    # Symmetric: a collapsing curve (Dice falling, loss rising) is no plateau either.
    moves = []
    if abs(dice_gain) > settings.max_dice_gain + ROUNDING:
        direction = "gained" if dice_gain > 0 else "fell"
        moves.append(f"EMA pseudo-Dice {direction} {abs(dice_gain):.4f} > {settings.max_dice_gain}")
    if abs(loss_drop) > settings.max_loss_drop + ROUNDING:
        direction = "fell" if loss_drop > 0 else "rose"
        moves.append(f"training loss {direction} {abs(loss_drop):.4f} > {settings.max_loss_drop}")
    where = f"over the last {width} of {epochs} epochs"
    reason = (
        f"no plateau {where}: " + "; ".join(moves)
        if moves
        else f"plateau {where}: EMA pseudo-Dice changed {dice_gain:+.4f} "
        f"(|change| <= {settings.max_dice_gain}), training loss changed {-loss_drop:+.4f} "
        f"(|change| <= {settings.max_loss_drop})"
    )
    return ConvergenceVerdict(not moves, dice_gain, loss_drop, width, final, reason)


def fold_verdict(result: FoldResult, settings: ConvergenceSettings) -> ConvergenceVerdict:
    """The verdict on a fold's stored curves."""
    return convergence_verdict(result.ema_pseudo_dice, result.train_losses, settings)


def stored_fold_result(folder: Path) -> FoldResult | None:
    """A finished fold's stored result (whatever its stamp), or None when it is not trained."""
    result_file = folder / RESULT_FILE
    if not (folder / FINAL_CHECKPOINT).is_file() or not result_file.is_file():
        return None
    return read_result(result_file)


def stored_models(
    trees: Sequence[NnunetEnvironment], dataset: str, folds: Iterable[int], trainer: str
) -> list[FoldResult]:
    """The finished models of `folds` of a partition stored in each of `trees`, tree by tree, in
    the trainer folder `trainer` (fold_records.trainer_folder)."""
    folds = list(folds)
    return [
        result
        for tree in trees
        for fold in folds
        if (result := stored_fold_result(fold_folder(tree, dataset, fold, trainer))) is not None
    ]


def convergence_table(
    folds: Iterable[tuple[str, int, FoldResult]], settings: ConvergenceSettings
) -> pl.DataFrame:
    """One row per (experiment, ratio, stored fold result): the verdict and the curve's length."""
    rows = []
    for experiment, ratio, result in folds:
        verdict = fold_verdict(result, settings)
        rows.append(
            {
                "experiment": experiment,
                "ratio": ratio,
                "fold": result.fold,
                "passed": verdict.passed,
                "dice_gain": verdict.dice_gain,
                "loss_drop": verdict.loss_drop,
                "final_ema_dice": verdict.final_ema_dice,
                "epochs": len(result.train_losses),
                "reason": verdict.reason,
            }
        )
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)
