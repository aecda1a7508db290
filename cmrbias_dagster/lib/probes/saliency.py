"""Where the image probe looks: Grad-CAM maps of held-out slices, their mean per group, and the
share of their mass outside the (dilated) heart."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import binary_dilation
from torch.nn import functional

from .classifier import SliceNet


@dataclass(frozen=True)
class GroupSaliency:
    """One group's mean saliency map (each slice's map sums to 1 before averaging) and the mean
    of its slices' heart masks (share of slices labelled at each pixel)."""

    group: str
    saliency: np.ndarray  # (size, size)
    heart: np.ndarray  # (size, size) in [0, 1]
    slices: int


def grad_cam(model: SliceNet, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Grad-CAM of each slice toward its own label (the logit for label 1, its negative for 0) on
    the last feature map, upsampled to the input's size and scaled to sum 1 (zeros when no
    pixel has positive evidence)."""
    maps = []
    for inputs, labels in zip(
        torch.from_numpy(x).split(batch_size),
        torch.from_numpy(y.astype(np.float32)).split(batch_size),
        strict=True,
    ):
        features = model.features(inputs).detach().requires_grad_(True)
        evidence = model.classify(features) * (2 * labels - 1)
        (gradient,) = torch.autograd.grad(evidence.sum(), features)
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        cam = functional.relu((weights * features).sum(dim=1, keepdim=True))
        cam = functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
        maps.append(cam.squeeze(1).detach())
    stacked = torch.cat(maps).numpy()
    totals = stacked.sum(axis=(1, 2), keepdims=True)
    return np.divide(stacked, totals, out=np.zeros_like(stacked), where=totals > 0)


def share_outside_heart(maps: np.ndarray, masks: np.ndarray, dilation_px: int) -> float:
    """The share of the maps' total mass outside each slice's heart mask dilated by
    `dilation_px` pixels."""
    structure = np.ones((1, 3, 3), dtype=bool)
    heart = binary_dilation(masks > 0, structure, iterations=dilation_px)
    total = float(maps.sum())
    return float(maps[~heart].sum()) / total if total > 0 else float("nan")


def group_saliency(
    maps: np.ndarray, masks: np.ndarray, slice_labels: np.ndarray, groups: tuple[str, str]
) -> list[GroupSaliency]:
    """Each group's mean map and mean heart mask; `groups[0]` is label 1."""
    result = []
    for group, label in zip(groups, (1, 0), strict=True):
        chosen = slice_labels == label
        result.append(
            GroupSaliency(
                group,
                maps[chosen].mean(axis=0),
                (masks[chosen] > 0).mean(axis=0),
                int(chosen.sum()),
            )
        )
    return result


def saliency_bytes(groups: list[GroupSaliency]) -> bytes:
    """The groups' maps as one .npz file's bytes (`read_saliency` reads them back)."""
    buffer = io.BytesIO()
    arrays = {}
    for index, group in enumerate(groups):
        arrays |= {
            f"group_{index}": np.array(group.group),
            f"saliency_{index}": group.saliency,
            f"heart_{index}": group.heart,
            f"slices_{index}": np.array(group.slices),
        }
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def read_saliency(path: Path) -> list[GroupSaliency]:
    """The groups' maps stored by `saliency_bytes` in `path`."""
    with np.load(path) as stored:
        count = sum(1 for key in stored.files if key.startswith("group_"))
        return [
            GroupSaliency(
                str(stored[f"group_{index}"]),
                stored[f"saliency_{index}"],
                stored[f"heart_{index}"],
                int(stored[f"slices_{index}"]),
            )
            for index in range(count)
        ]
