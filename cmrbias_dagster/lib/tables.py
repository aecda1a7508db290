"""Small table helpers shared by assets: Markdown rendering of Polars frames."""

import polars as pl


def _cell(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown_table(table: pl.DataFrame, max_rows: int = 50) -> str:
    """A Polars frame as a Markdown table (at most `max_rows` rows, noting the rest)."""
    if table.height == 0:
        return "_(empty)_"
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * table.width]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in table.head(max_rows).rows()
    ]
    if table.height > max_rows:
        lines.append(f"\n_{table.height - max_rows} more rows_")
    return "\n".join(lines)
