"""Each fold's softmax probabilities of one case, from nnU-Net's own single-array prediction with a
predictor that holds that fold alone: an independent path to check the ensemble against. Runs in
a fresh process (lib.nnunet.isolation), which imports torch and nnunetv2."""

from pathlib import Path

import numpy as np

from cmrbias_dagster.lib.design.settings import PredictionSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment


def fold_probabilities(
    env: NnunetEnvironment,
    dataset: str,
    folds: list[int],
    image: Path,
    settings: PredictionSettings,
    trainer: str,
) -> list[np.ndarray]:
    """Per fold, the (classes, *image shape) probabilities in the image's own geometry, from the
    models in the trainer folder `trainer`."""
    env.activate()
    import torch
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    data, properties = NibabelIO().read_images([str(image)])
    probabilities = []
    for fold in folds:
        predictor = nnUNetPredictor(
            tile_step_size=settings.tile_step_size,
            use_mirroring=settings.mirroring,
            perform_everything_on_device=False,
            device=torch.device("cpu"),
            allow_tqdm=False,
        )
        model = env.results / dataset / trainer
        predictor.initialize_from_trained_model_folder(str(model), use_folds=(fold,))
        _, fold_probability = predictor.predict_single_npy_array(data, properties, None, None, True)
        probabilities.append(np.asarray(fold_probability, dtype=np.float32))
    return probabilities
