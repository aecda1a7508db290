"""The probes' classifiers: a small CNN on 2D slices (images or one-hot masks) whose slice
probabilities are averaged per subject, and a ridge logistic model on per-subject features."""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class SliceNet(nn.Module):
    """Conv-ReLU-pool blocks (one per entry of `channels`), global average pooling and one logit.
    `features` is the last block's map before its pooling: Grad-CAM's layer."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        blocks, previous = [], in_channels
        for width in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                )
            )
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(previous, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's feature map (downsampled by 2 per earlier block)."""
        for block in self.blocks[:-1]:
            x = self.pool(block(x))
        return self.blocks[-1](x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The logit of label 1 from a feature map."""
        return self.head(features.mean(dim=(2, 3))).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def train_slice_net(
    x: np.ndarray,
    y: np.ndarray,
    channels: Sequence[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> SliceNet:
    """A SliceNet trained with AdamW on slices `x` (slices, channels, size, size) and their
    labels `y`, each class weighted by the inverse of its share of the slices."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SliceNet(x.shape[1], channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    positive_share = float(targets.mean())
    weights = torch.where(targets > 0.5, 0.5 / positive_share, 0.5 / (1 - positive_share))
    loss_of = nn.BCEWithLogitsLoss(reduction="none")
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = (loss_of(model(inputs[batch]), targets[batch]) * weights[batch]).mean()
            loss.backward()
            optimizer.step()
    return model.eval()


def slice_probabilities(model: SliceNet, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's probability of label 1 for every slice."""
    with torch.no_grad():
        logits = [model(batch) for batch in torch.from_numpy(x).split(batch_size)]
    return torch.sigmoid(torch.cat(logits)).numpy()


def subject_means(values: np.ndarray, owners: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """The mean of `values` over each of `subjects`' slices (`owners` gives each slice's)."""
    return np.array([values[owners == subject].mean() for subject in subjects])


def fit_logistic(features: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """Ridge logistic regression on standardised features by Newton's method: the weights
    (intercept last) for `predict_logistic`, with the standardisation folded in."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-8
    design = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
    weights = np.zeros(design.shape[1])
    ridge = penalty * np.eye(design.shape[1])
    ridge[-1, -1] = 0.0  # the intercept is not shrunk
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + ridge @ weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    folded = weights[:-1] / scale
    return np.append(folded, weights[-1] - folded @ mean)


def predict_logistic(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The probability of label 1 under `fit_logistic`'s weights."""
    return 1 / (1 + np.exp(-(features @ weights[:-1] + weights[-1])))
