"""`training: {augmentation: seg_order0}` on a real nnUNetTrainer: a tiny preprocessed partition
(bench/throughput_data.py: 8 subjects at 48x48, fold 0 trains on 8 cases, batch 2), batches
drawn in-process with seeded generators from the default and the nearest-neighbour paths."""

import numpy as np
import pytest
import torch

from bench.augmentation_paths import loader as seeded_loader
from bench.throughput_data import build_partition
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE

BATCHES = 100
LABELS = {0, 1, 2, 3}  # the padding label -1 is mapped to 0 by nnU-Net's RemoveLabelTansform


@pytest.fixture(scope="module")
def partition(tmp_path_factory: pytest.TempPathFactory):
    """The tiny profile's partition with 2 subjects per race x sex; nnU-Net pointed at it and
    augmenting in-process on one thread while the module runs."""
    design = load_study_design(DEFAULT_STUDY_FILE)
    out = tmp_path_factory.mktemp("augment")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        # Every variable planning sets or drops is patched, so all are restored afterwards.
        for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc"):
            patch.delenv(name, raising=False)
        patch.setenv("nnUNet_n_proc_DA", "0")
        env = build_partition(design, "tiny", 2, 2, out, workers=1)
        patch.setenv("nnUNet_n_proc_DA", "0")  # planning drops it
        torch.set_num_threads(1)
        yield env
    torch.set_num_threads(threads)


def loader(env: NnunetEnvironment, augmentation: str, seed: int):
    """The training loader (in-process) of fold 0's trainer, built as the pipeline builds it."""
    return seeded_loader(env, augmentation, seed)[0]


def draw(env: NnunetEnvironment, augmentation: str, seed: int) -> list[dict]:
    batches = loader(env, augmentation, seed)
    return [next(batches) for _ in range(BATCHES)]


def label_values(batches: list[dict]) -> set[int]:
    """Every label in the batches' targets, at every deep-supervision scale."""
    return {int(v) for batch in batches for target in batch["target"] for v in torch.unique(target)}


def label_fractions(batches: list[dict]) -> np.ndarray:
    target = torch.cat([batch["target"][0] for batch in batches])
    return np.array([(target == label).float().mean().item() for label in sorted(LABELS)])


def described(obj: object) -> object:
    """A transform as comparable plain values: its class and attributes, recursively."""
    if isinstance(obj, list | tuple):
        return [described(value) for value in obj]
    if isinstance(obj, dict):
        return {k: described(v) for k, v in obj.items() if k != "_grid_cache"}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__dict__"):
        return (type(obj).__name__, described(vars(obj)))
    return obj


def test_the_setting_is_checked_and_only_seg_order0_changes_the_stamp() -> None:
    with pytest.raises(ValueError, match=r"'augmentation' must be one of \('default', 'seg_o"):
        TrainingSettings.from_mapping({"augmentation": "nearest"})
    assert (
        TrainingSettings.from_mapping({"augmentation": "seg_order0"}).augmentation == "seg_order0"
    )
    # TrainingSettings().fingerprint() before the setting existed: existing folds keep their stamps.
    assert TrainingSettings().fingerprint() == "86a02695562cb06b"
    assert TrainingSettings(augmentation="seg_order0").fingerprint() != "86a02695562cb06b"


def test_seg_order0_changes_only_how_the_spatial_transform_resamples_labels(partition) -> None:
    plain, nearest = (
        described(loader(partition, augmentation, 0).data_loader.transforms)[1]["transforms"]
        for augmentation in ("default", "seg_order0")
    )
    spatial = [i for i, (name, _) in enumerate(plain) if name == "SpatialTransform"]
    assert [(plain[i][1]["mode_seg"], nearest[i][1]["mode_seg"]) for i in spatial] == [
        ("bilinear", "nearest")
    ]
    nearest[spatial[0]][1]["mode_seg"] = "bilinear"
    assert nearest == plain  # every other transform and parameter is nnU-Net's default


def test_same_draws_give_the_same_images_and_nearly_the_same_labels(partition) -> None:
    default, order0 = draw(partition, "default", 0), draw(partition, "seg_order0", 0)
    for plain, nearest in zip(default, order0, strict=True):
        # The label resampling draws no random numbers: same cases, crops, transforms, images.
        assert torch.equal(plain["data"], nearest["data"])
        assert len(plain["target"]) == len(nearest["target"]) == 2  # deep supervision
        for a, b in zip(plain["target"], nearest["target"], strict=True):
            assert (a.shape, a.dtype) == (b.shape, b.dtype)
    assert label_values(default) == label_values(order0) == LABELS
    targets = [torch.cat([b["target"][0] for b in batches]) for batches in (default, order0)]
    # Labels differ only at label borders of the rotated or scaled patches (about 1 in 3).
    assert 0 < (targets[0] != targets[1]).float().mean().item() < 0.01
    assert np.abs(label_fractions(default) - label_fractions(order0)).max() < 0.002


def test_independent_draws_match_the_default_distribution(partition) -> None:
    default, order0 = draw(partition, "default", 1), draw(partition, "seg_order0", 2)
    assert label_values(order0) == LABELS
    # 200 patches a path; with 120, independent seeds differed by up to 0.021 in a class
    # fraction, 0.01 in the mean and 0.03 in the SD.
    assert np.abs(label_fractions(default) - label_fractions(order0)).max() < 0.03
    images = [torch.cat([b["data"] for b in batches]) for batches in (default, order0)]
    assert abs(images[0].mean().item() - images[1].mean().item()) < 0.05
    assert abs(images[0].std().item() - images[1].std().item()) < 0.06
