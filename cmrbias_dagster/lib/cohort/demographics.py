"""The canonical demographics table: reading the project's CSV and typing its rows.

Every layout's importer turns its own information file into this table of strings: `subject_id`,
the canonical fields `sex`, `race`, `age`, `height_cm`, `weight_kg` (each nullable when a layout
lacks it), extra attribute columns an experiment may name (`vendor`, `centre`, `pathology`), and
internal columns starting with `_` (frame indices, a per-row problem) that never reach the manifest.
"""

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

CANONICAL_FIELDS = ("sex", "race", "age", "height_cm", "weight_kg")
NUMERIC_FIELDS = ("age", "height_cm", "weight_kg")
SEXES = ("female", "male")
# An importer sets these on a row it could not read; the manifest rejects the row with them.
PROBLEM, PROBLEM_FILE = "_problem", "_problem_file"


class DemographicsError(ValueError):
    """The demographics file as a whole cannot be used."""


@dataclass(frozen=True)
class Demographics:
    subject_id: str
    sex: str | None = None
    race: str | None = None
    age: float | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()

    @property
    def bmi(self) -> float | None:
        if self.height_cm is None or self.weight_kg is None:
            return None
        return round(self.weight_kg / (self.height_cm / 100) ** 2, 1)

    def columns(self) -> dict[str, object]:
        """The manifest's demographic columns: canonical fields, BMI and attributes."""
        fields = {name: getattr(self, name) for name in CANONICAL_FIELDS}
        return {**fields, "bmi": self.bmi, **dict(self.attributes)}


def tidy_table(table: pl.DataFrame) -> pl.DataFrame:
    """Header names stripped and lower-cased, values stripped, empty strings as nulls."""
    table = table.rename({name: name.strip().lower() for name in table.columns})
    return table.with_columns(
        pl.col(name).cast(pl.String).str.strip_chars().replace("", None) for name in table.columns
    )


def read_csv_strings(path: Path, what: str = "demographics file") -> pl.DataFrame:
    """A CSV as tidy strings; DemographicsError when it is missing or unreadable."""
    if not path.is_file():
        raise DemographicsError(f"{what} {path} does not exist")
    try:
        return tidy_table(pl.read_csv(path, infer_schema=False))
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise DemographicsError(f"{what} {path} is not a readable CSV: {error}") from error


def require_columns(table: pl.DataFrame, columns: Collection[str], where: str) -> None:
    """DemographicsError naming the file when its header lacks any of `columns`."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DemographicsError(
            f"{where} lacks required column(s) {', '.join(missing)}; "
            f"found {', '.join(table.columns) or 'none'}"
        )


def require_unique_ids(table: pl.DataFrame, where: str) -> pl.DataFrame:
    """The table, or DemographicsError listing the subject ids it holds more than once."""
    duplicated = table.filter(pl.col("subject_id").is_duplicated())["subject_id"].unique().sort()
    if len(duplicated):
        raise DemographicsError(
            f"{where} lists subject id(s) more than once: {', '.join(duplicated.to_list()[:10])}"
        )
    return table


def read_demographics_table(
    path: Path, required_fields: Collection[str] = CANONICAL_FIELDS
) -> pl.DataFrame:
    """The project's demographics CSV (subject_id plus canonical fields and attributes)."""
    table = read_csv_strings(path)
    require_columns(table, ["subject_id", *required_fields], f"demographics file {path}")
    return require_unique_ids(table, f"demographics file {path}")


def _number(field: str, text: str) -> float | str:
    try:
        value = float(text)
    except ValueError:
        return f"{field} {text!r} is not a number"
    if not math.isfinite(value) or value <= 0:
        return f"{field} {text!r} is missing or not positive"
    return value


def parse_demographics_row(
    row: dict[str, str | None], required: Collection[str] = CANONICAL_FIELDS
) -> Demographics | str:
    """Typed demographics for one row, or the reason the row is unusable."""
    text = {
        key: None if value is None else str(value).strip() or None for key, value in row.items()
    }
    for field in required:
        if text.get(field) is None:
            return f"{field} is missing"
    sex, race = (text["sex"].lower() if text.get("sex") else None), text.get("race")
    race = race.lower() if race else None
    if sex is not None and sex not in SEXES:
        return f"sex {row.get('sex')!r} is not one of {', '.join(SEXES)}"
    numbers: dict[str, float | None] = {}
    for field in NUMERIC_FIELDS:
        value = None if text.get(field) is None else _number(field, text[field])
        if isinstance(value, str):
            return value
        numbers[field] = value
    attributes = tuple(
        (key, None if value is None else value.lower())
        for key, value in text.items()
        if key not in ("subject_id", *CANONICAL_FIELDS) and not key.startswith("_")
    )
    return Demographics(str(text["subject_id"]), sex, race, **numbers, attributes=attributes)
