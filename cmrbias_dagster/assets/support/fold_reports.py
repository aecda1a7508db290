"""What a fold asset reports once trained: its metadata, data version and `converged` check, for
one model or for a fold's several: a protected-models fold's, one per group, or a cropping
cascade's two stages (docs/mitigation.md)."""

import dagster as dg

from cmrbias_dagster.lib.cohort.clinical import STRUCTURES
from cmrbias_dagster.lib.design.settings import ConvergenceSettings
from cmrbias_dagster.lib.nnunet.convergence import fold_verdict
from cmrbias_dagster.lib.nnunet.fold_records import FoldResult
from cmrbias_dagster.lib.nnunet.mitigation.protected import group_models_stamp
from cmrbias_dagster.lib.plots.subjects import markdown_image
from cmrbias_dagster.lib.plots.training_curve import training_curve_png

# What a fold asset trains: one model, or several by name (protected models: by group; cropping:
# by stage).
Trained = FoldResult | dict[str, FoldResult]


def fold_metadata(result: FoldResult, device: str) -> dict[str, object]:
    """What the UI shows for a trained fold; the curve is drawn from the stored per-epoch lists."""
    return {
        "device": device,
        "epochs_run": result.epochs_run,
        "resumed_from_epoch": result.start_epoch,
        "retrained": not result.skipped,
        # The partition's dataset whose identical training this fold reuses ("" if its own).
        "trained_by": result.trained_by,
        "precision": result.precision,
        "mitigation": result.mitigation,
        "recipe": dg.MetadataValue.json(result.recipe),  # also cmrbias_recipe.json by the model
        "final_train_loss": result.train_losses[-1],
        "final_val_loss": result.val_losses[-1],
        "mean_epoch_seconds": round(result.mean_epoch_seconds, 2),
        **{
            f"pseudo_dice_{name}": round(v, 4)
            for name, v in zip(STRUCTURES, result.pseudo_dice, strict=False)
        },
        **{f"validation_dice_{name}": round(v, 4) for name, v in result.validation_dice.items()},
        "checkpoint": dg.MetadataValue.path(result.checkpoint),
        "checkpoint_mb": round(result.checkpoint_bytes / 2**20, 1),
        "training_curve": dg.MetadataValue.md(
            markdown_image(
                training_curve_png(result.train_losses, result.val_losses, result.ema_pseudo_dice),
                "training curve",
            )
        ),
    }


def models_metadata(results: dict[str, FoldResult], device: str) -> dict[str, object]:
    """A several-model fold's metadata: its strategy, its models' names (`group_models` for
    protected models, `stages` for a cropping cascade), then each model as `fold_metadata` shows
    a fold, its keys prefixed with the model's name."""
    strategy = next((r.mitigation for r in results.values() if r.mitigation != "none"), "none")
    names = "group_models" if strategy == "protected_models" else "stages"
    return {
        "device": device,
        "mitigation": strategy,
        names: dg.MetadataValue.json(list(results)),
        "retrained": any(not result.skipped for result in results.values()),
        **{
            f"{group}_{key}": value
            for group, result in results.items()
            for key, value in fold_metadata(result, device).items()
            if key not in ("device", "mitigation")
        },
    }


def converged_check(result: FoldResult, settings: ConvergenceSettings) -> dg.AssetCheckResult:
    """The fold's `converged` check: a warning, never blocking, with the numbers it judged."""
    verdict = fold_verdict(result, settings)
    return dg.AssetCheckResult(
        check_name="converged",
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict.reason,
        metadata={
            "dice_gain": verdict.dice_gain,
            "loss_drop": verdict.loss_drop,
            "max_dice_gain": settings.max_dice_gain,
            "max_loss_drop": settings.max_loss_drop,
            "window_epochs": verdict.window_epochs,
            "epochs": len(result.train_losses),
            "final_ema_pseudo_dice": verdict.final_ema_dice,
            "reason": verdict.reason,
        },
    )


def models_converged(
    results: dict[str, FoldResult], settings: ConvergenceSettings
) -> dg.AssetCheckResult:
    """The `converged` check of a several-model fold: passed when every one of its models is."""
    checks = {group: converged_check(result, settings) for group, result in results.items()}
    return dg.AssetCheckResult(
        check_name="converged",
        passed=all(check.passed for check in checks.values()),
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{group}: {check.description}" for group, check in checks.items()),
        metadata={
            f"{group}_{key}": value
            for group, check in checks.items()
            for key, value in check.metadata.items()
        },
    )


def fold_materialization(
    trained: Trained, device: str, settings: ConvergenceSettings
) -> dg.MaterializeResult:
    """The fold asset's result: its model's metadata, stamp and `converged` check (each model's,
    for a fold of several)."""
    if isinstance(trained, FoldResult):
        metadata, stamp = fold_metadata(trained, device), trained.stamp
        check = converged_check(trained, settings)
    else:
        metadata = models_metadata(trained, device)
        stamp = group_models_stamp({group: result.stamp for group, result in trained.items()})
        check = models_converged(trained, settings)
    return dg.MaterializeResult(
        metadata=metadata, data_version=dg.DataVersion(stamp), check_results=[check]
    )


def training_summary(fold: int, trained: Trained, device: str) -> str:
    """The step's log line once a fold (or each of its models, by name) is trained or skipped."""
    models = trained.items() if isinstance(trained, dict) else [("", trained)]
    return "; ".join(
        f"fold {fold}{f' ({group} model)' if group else ''}: "
        f"{'unchanged, not retrained' if result.skipped else 'trained'} "
        f"from epoch {result.start_epoch} to {result.epochs_run} on {device}"
        for group, result in models
    )
