"""Writing tables and figures to disk atomically: a temporary file renamed into place."""

import os
import tempfile
from pathlib import Path

import polars as pl

LATEX_SPECIALS = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$"}


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
