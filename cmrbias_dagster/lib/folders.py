"""Replacing a folder as a whole: build it in a hidden sibling, then rename it into place."""

import shutil
import uuid
from pathlib import Path


def staging_folder(target: Path) -> Path:
    """A fresh hidden sibling of `target` (nnU-Net ignores it: the name lacks 'Dataset')."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    return staging


def replace_folder(new: Path, target: Path) -> None:
    """Move a completed folder onto `target`, removing an old `target` only once `new` is there."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
