"""Reading the cohort's demographics file into typed, validated rows."""

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

REQUIRED_COLUMNS = ("subject_id", "sex", "race", "age", "height_cm", "weight_kg")
NUMERIC_COLUMNS = ("age", "height_cm", "weight_kg")
SEXES = ("female", "male")


class DemographicsError(ValueError):
    """The demographics file as a whole cannot be used."""


@dataclass(frozen=True)
class Demographics:
    subject_id: str
    sex: str
    race: str
    age: float
    height_cm: float
    weight_kg: float

    @property
    def bmi(self) -> float:
        return round(self.weight_kg / (self.height_cm / 100) ** 2, 1)


def read_demographics_table(path: Path) -> pl.DataFrame:
    """Read the CSV as strings; raise DemographicsError if it is missing or malformed."""
    if not path.is_file():
        raise DemographicsError(f"demographics file {path} does not exist")
    try:
        table = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise DemographicsError(
            f"demographics file {path} is not a readable CSV: {error}"
        ) from error
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise DemographicsError(
            f"demographics file {path} lacks required column(s) {', '.join(missing)}; "
            f"found {', '.join(table.columns) or 'none'}"
        )
    duplicated = table.filter(pl.col("subject_id").is_duplicated())["subject_id"].unique().sort()
    if len(duplicated):
        raise DemographicsError(
            f"demographics file {path} lists subject id(s) more than once: "
            f"{', '.join(duplicated.to_list()[:10])}"
        )
    return table


def parse_demographics_row(row: dict[str, str | None]) -> Demographics | str:
    """Typed demographics for one row, or the reason the row is unusable."""
    sex = (row.get("sex") or "").strip().lower()
    race = (row.get("race") or "").strip().lower()
    if sex not in SEXES:
        return f"sex {row.get('sex')!r} is not one of {', '.join(SEXES)}"
    if not race:
        return "race is missing"
    numbers: dict[str, float] = {}
    for column in NUMERIC_COLUMNS:
        text = row.get(column)
        try:
            value = float(text) if text is not None else math.nan
        except ValueError:
            return f"{column} {text!r} is not a number"
        if not math.isfinite(value) or value <= 0:
            return f"{column} {text!r} is missing or not positive"
        numbers[column] = value
    return Demographics(str(row["subject_id"]).strip(), sex, race, **numbers)
