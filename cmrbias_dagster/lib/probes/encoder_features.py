"""A trained nnU-Net model's encoder features per subject: the deepest encoder stage's output
(the bottleneck) of the 2D network, averaged over its spatial positions, then over the subject's
labelled ED and ES slices. Call `subject_encoder_features` in a fresh process (lib.isolation):
it imports torch and nnunetv2."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmrbias_dagster.lib.design.settings import PredictionSettings
from cmrbias_dagster.lib.nnunet.inference import load_predictor

# One subject's files: image ED, label ED, image ES, label ES.
SubjectFiles = tuple[Path, Path, Path, Path]


def padded_to_stride(slices: np.ndarray, patch: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """(slices, channels, y, x) zero-padded (after the end) to at least `patch` and to a multiple
    of the network's total `stride` in y and x."""
    pads = [(0, 0), (0, 0)]
    for length, least, step in zip(slices.shape[2:], patch, stride, strict=True):
        target = max(length, least)
        pads.append((0, -(-target // step) * step - length))
    return np.pad(slices, pads)


def subject_encoder_features(
    model: Path, fold: int, subjects: Sequence[SubjectFiles], threads: int | None = 1
) -> np.ndarray:
    """(subjects, bottleneck channels): each subject's mean pooled bottleneck activation over
    the labelled slices of both phases, preprocessed as nnU-Net preprocesses at inference."""
    import torch
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO

    if threads is not None:
        torch.set_num_threads(threads)
    predictor = load_predictor(model, [fold], PredictionSettings(mirroring=False), "cpu")[0]
    network, configuration = predictor.network.eval(), predictor.configuration_manager
    preprocessor = configuration.preprocessor_class(verbose=False)
    strides = np.array(configuration.network_arch_init_kwargs["strides"]).reshape(-1, 2)
    stride = strides.prod(axis=0)
    io, features = NibabelIO(), []
    for files in subjects:
        pooled = []
        for image_file, label_file in (files[:2], files[2:]):
            image, properties = io.read_images([str(image_file)])
            label, _ = io.read_seg(str(label_file))
            data, seg, _ = preprocessor.run_case_npy(
                image,
                label,
                properties,
                predictor.plans_manager,
                configuration,
                predictor.dataset_json,
            )
            labelled = np.flatnonzero((seg[0] > 0).reshape(seg.shape[1], -1).any(axis=1))
            if labelled.size == 0:
                raise ValueError(f"{label_file}: no labelled slice after nnU-Net's preprocessing")
            slices = np.moveaxis(data[:, labelled], 1, 0)  # (slices, channels, y, x)
            slices = padded_to_stride(slices, configuration.patch_size, stride)
            with torch.no_grad():
                bottleneck = network.encoder(torch.from_numpy(slices.astype(np.float32)))[-1]
            pooled.append(bottleneck.mean(dim=(2, 3)).numpy())
        features.append(np.concatenate(pooled).mean(axis=0))
    return np.stack(features)
