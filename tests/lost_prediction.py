"""A stand-in for `predict_ensemble` that loses the first test case's prediction and writes each
other case's true labels as its prediction. Runs in a fresh process (lib.nnunet.isolation), so it
lives in a module of its own that imports no Dagster."""

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from cmrbias_dagster.lib.design.settings import PredictionSettings
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment
from cmrbias_dagster.lib.nnunet.inference import CasePrediction


def predict_all_but_last(
    env: NnunetEnvironment,
    dataset: str,
    folds: Sequence[int],
    cases: Sequence[Case],
    out_dir: Path,
    settings: PredictionSettings,
    device: str,
    trainer: str = "",
    routes: Mapping[str, Path] | None = None,
) -> list[CasePrediction]:
    """Claims a perfect prediction of every case, as if the first file had been lost after
    writing (the first case is also one the asset's montage would show)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for case in cases[1:]:
        shutil.copyfile(case.label, out_dir / f"{case.case_id}.nii.gz")
    return [
        CasePrediction(
            case.case_id, str(out_dir / f"{case.case_id}.nii.gz"), [1.0] * len(folds), 1.0
        )
        for case in cases
    ]
