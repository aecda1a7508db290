"""What assets write and show: files and folders replaced atomically, tables as CSV, LaTeX and
Markdown, and data versions that hash a table's content."""

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import polars as pl

LATEX_SPECIALS = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$"}
# Characters that change inline Markdown anywhere, and those that start a block at a line's start.
MARKDOWN_SPECIALS = frozenset("\\`*_[]<>|~")
LINE_START_SPECIALS = frozenset("#+-")


def write_atomically(path: Path, content: bytes) -> Path:
    """Write `content` to `path` through a temporary sibling, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; outputs are for everyone to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


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


def latex_table(table: pl.DataFrame, digits: int = 3) -> str:
    """A booktabs `tabular` of the frame, floats rounded to `digits` significant digits."""

    def cell(value: object) -> str:
        text = "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else value
        return "".join(LATEX_SPECIALS.get(c, c) for c in str(text))

    lines = [
        r"\begin{tabular}{" + "l" * table.width + "}",
        r"\toprule",
        " & ".join(cell(c) for c in table.columns) + r" \\",
        r"\midrule",
        *(" & ".join(cell(v) for v in row) + r" \\" for row in table.rows()),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def export_table(table: pl.DataFrame, folder: Path, name: str) -> dict[str, Path]:
    """`<name>.csv` and `<name>.tex` in `folder`; returns both paths."""
    csv = write_atomically(folder / f"{name}.csv", table.write_csv().encode())
    tex = write_atomically(folder / f"{name}.tex", latex_table(table).encode())
    return {"csv": csv, "latex": tex}


def escape_markdown(text: str) -> str:
    """`text` with a backslash before each character Markdown would eat, so that significance
    stars (`***`), names like `race_black` and `p<0.05` show as written."""
    escaped = "".join(f"\\{c}" if c in MARKDOWN_SPECIALS else c for c in text)
    return f"\\{escaped}" if escaped[:1] in LINE_START_SPECIALS else escaped


def _cell(value: object) -> str:
    """A null is an empty cell, as in the CSV, LaTeX and HTML exports."""
    if value is None:
        return ""
    return escape_markdown(f"{value:.3g}" if isinstance(value, float) else str(value))


def markdown_table(table: pl.DataFrame, max_rows: int = 50) -> str:
    """A Polars frame as a Markdown table (at most `max_rows` rows, noting the rest)."""
    if table.height == 0:
        return "_(empty)_"
    header = "| " + " | ".join(escape_markdown(name) for name in table.columns) + " |"
    lines = [header, "|" + "---|" * table.width]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in table.head(max_rows).rows()
    ]
    if table.height > max_rows:
        lines.append(f"\n_{table.height - max_rows} more rows_")
    return "\n".join(lines)


def table_version(table: pl.DataFrame, columns: list[str], sort_by: str = "subject_id") -> str:
    """A short hash of the given columns of `table`, independent of row order."""
    rows = table.select(columns).sort(sort_by).rows()
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def markdown_rows(table: str) -> list[list[str]]:
    """The body cells of a Markdown table as `markdown_table` writes it."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
