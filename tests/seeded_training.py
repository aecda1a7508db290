"""`train_fold` with Python's, NumPy's and torch's generators seeded first: a reproducible curve
(the fold runs in one process on the CPU, augmenting in-process)."""

from cmrbias_dagster.lib.nnunet.fold_records import FoldResult
from cmrbias_dagster.lib.nnunet.training import train_fold


def seeded_train_fold(seed: int, *args: object) -> FoldResult:
    """Seed every generator nnU-Net's training draws from, then train the fold."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return train_fold(*args)
