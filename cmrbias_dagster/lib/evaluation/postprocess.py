"""Post-processing of predicted label maps: keep each class's largest connected component.

Components are 3D with full (26-neighbour) connectivity, as nnU-Net v2's
`remove_all_but_largest_component` (skimage `label` with its default, full connectivity): two voxels
that touch only at an edge or a corner, including across slices, belong to one component. With
10 mm slices this matters: the heart moves between slices, so a structure's cross-sections often
overlap only diagonally. Components tied for the largest size are all kept, again as nnU-Net does.
"""

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def keep_largest_component(labels: np.ndarray, classes: Sequence[int] = (1, 2, 3)) -> np.ndarray:
    """A copy of `labels` in which each class keeps only its largest 3D component; the rest is 0."""
    result = labels.copy()
    full = ndimage.generate_binary_structure(labels.ndim, labels.ndim)
    for label in classes:
        components, count = ndimage.label(labels == label, structure=full)
        if count < 2:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        dropped = sizes < sizes.max()
        dropped[0] = False
        result[dropped[components]] = 0
    return result
