"""Writing converted subjects as canonical NIfTI files: atomically, and only when sources change."""

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrbias_dagster.lib.cohort.validation import UKBB_FILES
from cmrbias_dagster.lib.outputs import replace_folder, staging_folder

STAMP_FILE = ".source_stamp"


def source_stamp(paths: Iterable[Path], *details: object) -> str:
    """A hash of the source files' names, sizes and modification times, plus `details`."""
    digest = hashlib.sha256(repr(details).encode())
    for path in paths:
        stat = path.stat() if path.is_file() else None
        digest.update(f"{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def image_like(data: np.ndarray, source: nib.Nifti1Image) -> nib.Nifti1Image:
    """A NIfTI image holding `data` with the source's affine and header (spacing included)."""
    return nib.Nifti1Image(data, source.affine, header=source.header.copy())


def write_canonical(
    folder: Path, stamp: str, images: Callable[[], dict[str, nib.Nifti1Image]]
) -> dict[str, Path]:
    """Canonical files (keys of UKBB_FILES) in `folder`, rebuilt when `stamp` changed.

    `images` runs first, so a subject that fails conversion leaves nothing behind; the files are
    written into a staging folder that is then renamed into place.
    """
    stamp_path = folder / STAMP_FILE
    if stamp_path.is_file() and stamp_path.read_text() == stamp:
        return {key: folder / UKBB_FILES[key] for key in _stamped_keys(folder)}
    converted = images()
    staging = staging_folder(folder)
    for key, image in converted.items():
        nib.save(image, staging / UKBB_FILES[key])
    (staging / STAMP_FILE).write_text(stamp)
    replace_folder(staging, folder)
    return {key: folder / UKBB_FILES[key] for key in converted}


def _stamped_keys(folder: Path) -> list[str]:
    return [key for key, name in UKBB_FILES.items() if (folder / name).is_file()]
