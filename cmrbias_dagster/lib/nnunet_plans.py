"""nnU-Net's fingerprint, 2d plan (with the profile's edits) and preprocessing of a raw dataset."""

import copy
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from cmrbias_dagster.lib.nnunet_dataset import NnunetEnvironment, replace_folder, staging_folder

CONFIGURATION = "2d"
COMPLETE_MARKER = ".complete"
SPLITS_FILE = "splits_final.json"
MR_INTENSITY_SAMPLES = 1_000_000
_PREPROCESSED_VARIABLE = "nnUNet_preprocessed"
# Lists in arch_kwargs with one entry per encoder stage; the decoder has one stage fewer.
_PER_STAGE = ("kernel_sizes", "strides", "n_conv_per_stage")
_PER_DECODER_STAGE = ("n_conv_per_stage_decoder",)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class PlanEdits:
    """The profile's edits to nnU-Net's default 2d plan; None keeps nnU-Net's choice."""

    batch_size: int | None = None
    features_per_stage: tuple[int, ...] | None = None
    patch_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and not _positive_int(self.batch_size):
            raise ValueError(
                f"plan edit batch_size must be a positive integer, got {self.batch_size!r}"
            )
        for name in ("features_per_stage", "patch_size"):
            value = getattr(self, name)
            if value is not None:
                if not value or not all(_positive_int(v) for v in value):
                    raise ValueError(f"plan edit {name} must list positive integers, got {value!r}")
                object.__setattr__(self, name, tuple(value))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> "PlanEdits":
        """From the YAML profile's `nnunet:` block (batch_size, features_per_stage, patch_size)."""
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - {field.name for field in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown nnunet plan edits {unknown}; known: batch_size, features_per_stage, "
                "patch_size"
            )
        return cls(**mapping)


def apply_plan_edits(plans: dict, edits: PlanEdits, configuration: str = CONFIGURATION) -> dict:
    """A copy of nnU-Net's plans with `edits` applied to one configuration; `plans` is unchanged."""
    edited = copy.deepcopy(plans)
    try:
        config = edited["configurations"][configuration]
        arch = config["architecture"]["arch_kwargs"]
    except KeyError as error:
        raise ValueError(
            f"plans have no architecture for configuration {configuration!r}"
        ) from error
    if edits.batch_size is not None:
        config["batch_size"] = edits.batch_size
    if edits.features_per_stage is not None:
        n_stages = len(edits.features_per_stage)
        if n_stages > arch["n_stages"]:
            raise ValueError(
                f"features_per_stage {edits.features_per_stage} has {n_stages} stages; nnU-Net "
                f"planned {arch['n_stages']} and stages can only be removed"
            )
        arch["n_stages"] = n_stages
        arch["features_per_stage"] = list(edits.features_per_stage)
        for key in _PER_STAGE:
            arch[key] = arch[key][:n_stages]
        for key in _PER_DECODER_STAGE:
            arch[key] = arch[key][: n_stages - 1]
    if edits.patch_size is not None:
        if len(edits.patch_size) != len(config["patch_size"]):
            raise ValueError(
                f"patch_size {edits.patch_size} must have {len(config['patch_size'])} axes"
            )
        config["patch_size"] = list(edits.patch_size)
    # The network halves the patch at each stride: every axis must divide by the total stride.
    total_stride = [math.prod(axis) for axis in zip(*arch["strides"], strict=True)]
    if any(size % stride for size, stride in zip(config["patch_size"], total_stride, strict=True)):
        raise ValueError(
            f"patch size {config['patch_size']} is not divisible by the network's total stride "
            f"{total_stride}"
        )
    return edited


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
) -> Path:
    """Fingerprint, plan, edit the plan, preprocess the 2d configuration and write the splits.

    Everything is built under a staging root and moved to `env.preprocessed/<name>` at the end,
    so that folder is either the previous complete result or the new one, marked `.complete`.
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
        with _nnunet_preprocessed_root(staging_root):
            _extract_fingerprint(dataset_id, num_processes)
            plans_identifier = plan_experiments([dataset_id])
            plans_file = staging_root / name / f"{plans_identifier}.json"
            plans = json.loads(plans_file.read_text())
            # Edited before preprocessing, although neither batch size, network nor patch size
            # changes the preprocessed values (spacing, normalisation, resampling do): the 2d patch
            # size sets the blosc2 chunk shape of the .b2nd files, so keep it the trained one.
            plans_file.write_text(json.dumps(apply_plan_edits(plans, plan_edits), indent=4))
            preprocess(
                [dataset_id],
                plans_identifier=plans_identifier,
                configurations=(CONFIGURATION,),
                num_processes=(num_processes,),
                show_progress_bar=False,
            )
        built = staging_root / name
        (built / SPLITS_FILE).write_text(json.dumps(splits, indent=4))
        marker = {
            "plans_identifier": plans_identifier,
            "configuration": CONFIGURATION,
            "n_cases": len(raw_cases),
        }
        (built / COMPLETE_MARKER).write_text(json.dumps(marker))
        replace_folder(built, target)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return target


def dataset_fingerprint_summary(preprocessed_dataset_dir: Path) -> dict:
    """A few numbers of a completed preprocessed dataset's 2d plan, for UI metadata."""
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
