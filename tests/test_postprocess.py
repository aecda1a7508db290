"""Keeping each class's largest 3D connected component, on hand-built label maps."""

import numpy as np
import pytest

from cmrbias_dagster.lib.evaluation.postprocess import keep_largest_component

SHAPE = (16, 16, 8)


def blank(dtype: type = np.uint8) -> np.ndarray:
    return np.zeros(SHAPE, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_only_the_largest_cube_of_a_class_stays(dtype: type) -> None:
    labels = blank(dtype)
    labels[1:3, 1:3, 1:3] = 1  # 8 voxels
    labels[8:11, 8:11, 3:6] = 1  # 27 voxels
    result = keep_largest_component(labels)
    assert result.dtype == dtype
    assert (result == 1).sum() == 27
    assert (result[8:11, 8:11, 3:6] == 1).all()
    assert not result[1:3, 1:3, 1:3].any()


def test_classes_are_filtered_independently() -> None:
    labels = blank()
    labels[2:6, 2:6, 2:4] = 1  # 32 voxels of class 1
    labels[6:8, 2:6, 2:4] = 2  # 16 voxels of class 2, face-touching class 1: its own component
    labels[12, 12, 6] = 2  # a stray class-2 voxel
    labels[10:13, 1:4, 0:2] = 3  # one component of class 3
    result = keep_largest_component(labels)
    expected = labels.copy()
    expected[12, 12, 6] = 0
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize(
    ("offset", "connected"),
    [
        ((1, 1, 1), True),  # corner contact across slices
        ((1, 1, 0), True),  # edge contact in a slice
        ((1, 0, 1), True),  # edge contact across slices
        ((1, 0, 0), True),  # face contact
        ((2, 0, 0), False),  # one voxel gap
        ((2, 2, 1), False),
    ],
)
def test_diagonal_contact_joins_components(offset: tuple[int, int, int], connected: bool) -> None:
    # A 2-voxel bar ending at (6, 5, 3) and one voxel at `offset` from that end: with
    # 26-connectivity any contact (face, edge or corner) makes one 3-voxel component.
    labels = blank()
    labels[5:7, 5, 3] = 1
    single = tuple(c + o for c, o in zip((6, 5, 3), offset, strict=True))
    labels[single] = 1
    result = keep_largest_component(labels)
    assert result[single] == (1 if connected else 0)
    assert (result[5:7, 5, 3] == 1).all()


def test_components_tied_for_largest_are_all_kept() -> None:
    labels = blank()
    labels[1:3, 1:3, 1:3] = 2
    labels[10:12, 10:12, 5:7] = 2
    np.testing.assert_array_equal(keep_largest_component(labels), labels)


def test_absent_classes_and_classes_not_asked_for_are_untouched() -> None:
    labels = blank()
    labels[1:4, 1:4, 1:3] = 1
    labels[12, 12, 6] = 1  # a stray voxel of class 1, which is not asked for
    labels[5:7, 5:7, 5] = 2
    labels[14, 1, 0] = 2
    result = keep_largest_component(labels, classes=(2, 3))
    expected = labels.copy()
    expected[14, 1, 0] = 0
    np.testing.assert_array_equal(result, expected)


def test_the_input_is_not_modified() -> None:
    labels = blank()
    labels[1:3, 1:3, 1:3] = 1
    labels[8:11, 8:11, 3:6] = 1
    before = labels.copy()
    result = keep_largest_component(labels)
    np.testing.assert_array_equal(labels, before)
    assert result is not labels
