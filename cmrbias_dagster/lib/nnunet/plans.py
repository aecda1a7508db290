"""nnU-Net's fingerprint, plan of the chosen network (with the profile's edits) and preprocessing
of a raw dataset."""

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from multiprocessing.pool import ThreadPool
from pathlib import Path

from cmrbias_dagster.lib.design.settings import NetworkSettings, PlanEdits
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.plan_edits import apply_plan_edits
from cmrbias_dagster.lib.outputs import replace_folder, staging_folder

COMPLETE_MARKER = ".complete"
DEFAULT_NETWORK = NetworkSettings()
SPLITS_FILE = "splits_final.json"
MR_INTENSITY_SAMPLES = 1_000_000
_PREPROCESSED_VARIABLE = "nnUNet_preprocessed"


@contextmanager
def _nnunet_preprocessed_root(root: Path) -> Iterator[None]:
    # nnU-Net reads the variable on every use (and spawn workers inherit it): point it at a staging
    # root so that nothing half-written ever lands under the real preprocessed folder.
    previous = os.environ.get(_PREPROCESSED_VARIABLE)
    os.environ[_PREPROCESSED_VARIABLE] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PREPROCESSED_VARIABLE, None)
        else:
            os.environ[_PREPROCESSED_VARIABLE] = previous


class _ThreadContext:
    Pool = ThreadPool


@contextmanager
def _pools_as_threads() -> Iterator[None]:
    """nnU-Net's fingerprint and preprocessing pools spawn fresh interpreters, each importing torch
    (seconds apiece, most of a small dataset's planning time). This process is already isolated
    (run_in_fresh_process), so threads in it do the same work without that start-up. The file
    listing's fork pool becomes threads too: no fork of a process that may hold threads."""
    import nnunetv2.utilities.utils as nnunet_utils

    original_context, original_pool = multiprocessing.get_context, nnunet_utils.Pool
    multiprocessing.get_context = lambda method=None: _ThreadContext
    nnunet_utils.Pool = ThreadPool
    try:
        yield
    finally:
        multiprocessing.get_context, nnunet_utils.Pool = original_context, original_pool


def _extract_fingerprint(dataset_id: int, num_processes: int) -> None:
    """nnU-Net's integrity check and fingerprint, drawing 1e6 foreground intensities, not 1e8.

    Those intensities feed only CT normalisation; MR channels are z-scored per image, so the
    plans are identical and the step takes about half the time (bench/plan_fingerprint.py).
    """
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset

    class MRFingerprintExtractor(DatasetFingerprintExtractor):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.num_foreground_voxels_for_intensitystats = MR_INTENSITY_SAMPLES

    extract_fingerprint_dataset(
        dataset_id,
        MRFingerprintExtractor,
        num_processes,
        check_dataset_integrity=True,
        verbose=False,
        show_progress_bar=False,
    )


def _raw_dataset_name(dataset_id: int, env: NnunetEnvironment) -> str:
    prefix = f"Dataset{dataset_id:03d}_"
    names = sorted(p.name for p in env.raw.glob(f"{prefix}*") if p.is_dir())
    if len(names) != 1:
        raise FileNotFoundError(
            f"expected one raw dataset {prefix}* under {env.raw}, found {names or 'none'}"
        )
    return names[0]


def _check_splits(splits: list[dict[str, list[str]]], cases: set[str], name: str) -> None:
    for index, fold in enumerate(splits):
        if set(fold) != {"train", "val"}:
            raise ValueError(f"fold {index} of the splits has keys {sorted(fold)}, not train/val")
        absent = sorted({*fold["train"], *fold["val"]} - cases)
        if absent:
            raise ValueError(f"fold {index} of the splits names cases absent from {name}: {absent}")
        both = sorted(set(fold["train"]) & set(fold["val"]))
        if both:
            raise ValueError(f"fold {index} of the splits trains and validates on {both}")


def plan_and_preprocess(
    dataset_id: int,
    env: NnunetEnvironment,
    plan_edits: PlanEdits,
    splits: list[dict[str, list[str]]],
    num_processes: int = 2,
    thread_workers: bool = True,
    network: NetworkSettings = DEFAULT_NETWORK,
) -> Path:
    """Fingerprint, plan with the network's planner, edit the plan of its configuration,
    preprocess that configuration and write the splits.

    Everything is built under a staging root and moved to `env.preprocessed/<name>` at the end,
    so that folder is either the previous complete result or the new one, marked `.complete`.
    `thread_workers`: nnU-Net's `num_processes` workers are threads of this process instead of
    spawned interpreters (same output, about twice as fast here: bench/plan_pools.py).
    Sets nnU-Net's environment variables of this process to `env` (see NnunetEnvironment.activate).
    """
    env.activate()
    # The planner calls torch.set_num_threads(nnUNet_n_proc_DA), which fails for 0 (the value
    # training uses for in-process augmentation on small machines).
    if os.environ.get("nnUNet_n_proc_DA") == "0":
        del os.environ["nnUNet_n_proc_DA"]
    # Imported here: nnunetv2 pulls in torch, which the Dagster code location should not load.
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        plan_experiments,
        preprocess,
    )

    name = _raw_dataset_name(dataset_id, env)
    raw_cases = {p.name.removesuffix(".nii.gz") for p in (env.raw / name / "labelsTr").iterdir()}
    _check_splits(splits, raw_cases, name)
    target = env.preprocessed / name
    staging_root = staging_folder(target)
    try:
        workers = _pools_as_threads() if thread_workers else nullcontext()
        with _nnunet_preprocessed_root(staging_root), workers:
            _extract_fingerprint(dataset_id, num_processes)
            plans_identifier = plan_experiments([dataset_id], network.planner_class)
            plans_file = staging_root / name / f"{plans_identifier}.json"
            plans = json.loads(plans_file.read_text())
            # Edited before preprocessing, although neither batch size, network nor patch size
            # changes the preprocessed values (spacing, normalisation, resampling do): the 2d patch
            # size sets the blosc2 chunk shape of the .b2nd files, so keep it the trained one.
            edited = apply_plan_edits(plans, plan_edits, network.configuration)
            plans_file.write_text(json.dumps(edited, indent=4))
            preprocess(
                [dataset_id],
                plans_identifier=plans_identifier,
                configurations=(network.configuration,),
                num_processes=(num_processes,),
                show_progress_bar=False,
            )
        built = staging_root / name
        (built / SPLITS_FILE).write_text(json.dumps(splits, indent=4))
        marker = {
            "plans_identifier": plans_identifier,
            "configuration": network.configuration,
            "n_cases": len(raw_cases),
        }
        (built / COMPLETE_MARKER).write_text(json.dumps(marker))
        replace_folder(built, target)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return target


def dataset_fingerprint_summary(preprocessed_dataset_dir: Path) -> dict:
    """A few numbers of a completed preprocessed dataset's plan, for UI metadata."""
    marker_file = preprocessed_dataset_dir / COMPLETE_MARKER
    if not marker_file.is_file():
        raise FileNotFoundError(
            f"{preprocessed_dataset_dir} is not a completed preprocessed dataset"
        )
    marker = json.loads(marker_file.read_text())
    plans_identifier = marker["plans_identifier"]
    plans = json.loads((preprocessed_dataset_dir / f"{plans_identifier}.json").read_text())
    config = plans["configurations"][marker["configuration"]]
    arch = config["architecture"]["arch_kwargs"]
    return {
        "plans_identifier": plans_identifier,
        "n_cases": marker["n_cases"],
        "patch_size": list(config["patch_size"]),
        "batch_size": config["batch_size"],
        "n_stages": arch["n_stages"],
        "features_per_stage": list(arch["features_per_stage"]),
        "median_shape": list(config["median_image_size_in_voxels"]),
        "spacing": list(config["spacing"]),
    }
