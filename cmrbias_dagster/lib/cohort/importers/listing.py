"""Finding subject folders in a cohort folder."""

from pathlib import Path

NESTED_DEPTH = 3  # e.g. M&Ms-1's Training/Labeled/<ID>/


def top_level_folders(root: Path) -> dict[str, list[Path]]:
    """Every folder directly under `root`, by name (the UK Biobank layout)."""
    if not root.is_dir():
        return {}
    return {path.name: [path] for path in sorted(root.iterdir()) if path.is_dir()}


def is_subject_folder(folder: Path) -> bool:
    """A folder holding `<folder name>_*.nii.gz` files or an ACDC `Info.cfg`."""
    prefix = f"{folder.name}_"
    return (folder / "Info.cfg").is_file() or any(
        path.name.startswith(prefix) and path.name.endswith(".nii.gz") for path in folder.iterdir()
    )


def nested_subject_folders(root: Path) -> dict[str, list[Path]]:
    """Subject folders up to NESTED_DEPTH levels below `root`, by name; a name found in more than
    one place lists every folder (a duplicate subject id)."""
    found: dict[str, list[Path]] = {}
    for depth in range(1, NESTED_DEPTH + 1):
        for folder in sorted(root.glob("/".join(["*"] * depth))):
            if folder.is_dir() and is_subject_folder(folder):
                found.setdefault(folder.name, []).append(folder)
    return found
