"""A UK Biobank CSV export (`eid`, `31-0.0`, `21000-0.0`, ... or the Research Analysis
Platform's `eid`, `p31`, `p21000_i0`, ...) as the canonical table.

Fields: 31 sex (coding 9: 0 female, 1 male) and 21000 ethnic background (coding 1001) are
required; 21003 age at the visit (or 34 birth year with 53 visit date), 50 height and 21002
weight are optional. Ethnic background takes the first non-missing instance (0, 1, 2, ...); age
and body measures prefer the imaging visit (instance 2), where the CMR images were taken.
"""

import re
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.demographics import (
    PROBLEM,
    DemographicsError,
    read_csv_strings,
    require_unique_ids,
)

SEX_CODES = {"0": "female", "1": "male"}
# Coding 1001 to study groups. Chinese, mixed, other and unknown keep their own labels, so an
# experiment uses them only when it names them.
DEFAULT_ETHNICITY_GROUPS: dict[str, str] = {
    **dict.fromkeys(("1", "1001", "1002", "1003"), "white"),
    **dict.fromkeys(("2", "2001", "2002", "2003", "2004"), "mixed"),
    **dict.fromkeys(("3", "3001", "3002", "3003", "3004"), "asian"),
    **dict.fromkeys(("4", "4001", "4002", "4003"), "black"),
    "5": "chinese",
    "6": "other",
    **dict.fromkeys(("-1", "-3"), "unknown"),
}
IMAGING_INSTANCE = 2
# Showcase exports name columns `21000-0.0` (field-instance.array); the Research Analysis
# Platform names them `p21000_i0` (`p31` for a field without instances, `_a1` for arrays).
_FIELD_COLUMN = re.compile(r"^(\d+)-(\d+)\.(\d+)$|^p(\d+)(?:_i(\d+))?(?:_a(\d+))?$")


def field_instance_array(column: str) -> tuple[int, int, int] | None:
    """(field, instance, array) of an export column name, None for other columns."""
    match = _FIELD_COLUMN.match(column)
    if not match:
        return None
    field, instance, array = match[1] or match[4], match[2] or match[5], match[3] or match[6]
    return int(field), int(instance or 0), int(array or 0)


def field_columns(columns: list[str], field: int, first_instance: int = 0) -> list[str]:
    """Columns of one field, `first_instance` first, then the other instances in order."""
    found = [(key, c) for c in columns if (key := field_instance_array(c)) and key[0] == field]
    found.sort(key=lambda kc: (kc[0][1] != first_instance, kc[0][1], kc[0][2]))
    return [column for _, column in found]


def first_value(row: dict[str, str | None], columns: list[str]) -> str | None:
    """The first non-missing value among `columns`."""
    return next((row[column] for column in columns if row.get(column)), None)


def code_text(text: str) -> str:
    """A code as the coding writes it: '1001.0' and ' 1001' become '1001'."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _age(row: dict[str, str | None], columns: list[str]) -> str | None:
    age = first_value(row, field_columns(columns, 21003, IMAGING_INSTANCE))
    birth_year = first_value(row, field_columns(columns, 34))
    visit = first_value(row, field_columns(columns, 53, IMAGING_INSTANCE))
    if age is not None or birth_year is None or visit is None:
        return age
    try:
        return str(int(visit[:4]) - int(float(birth_year)))
    except ValueError:
        return birth_year


def canonical_row(
    row: dict[str, str | None], columns: list[str], groups: dict[str, str]
) -> dict[str, str | None]:
    """One export row as a canonical row; `_problem` says why a code cannot be used."""
    sex_code = first_value(row, field_columns(columns, 31))
    ethnicity = first_value(row, field_columns(columns, 21000))
    problem = None
    if sex_code is not None and code_text(sex_code) not in SEX_CODES:
        problem = f"sex code {sex_code!r} (field 31) is not 0 (female) or 1 (male)"
    elif ethnicity is None:
        problem = "ethnic background (field 21000) is missing in every instance"
    elif code_text(ethnicity) not in groups:
        problem = (
            f"ethnic background code {ethnicity!r} (field 21000) is not in the code mapping "
            "(cohort resource field `ukbb_ethnicity_groups`)"
        )
    return {
        "subject_id": row["eid"],
        "sex": SEX_CODES.get(code_text(sex_code)) if sex_code else None,
        "race": groups.get(code_text(ethnicity)) if ethnicity else None,
        "age": _age(row, columns),
        "height_cm": first_value(row, field_columns(columns, 50, IMAGING_INSTANCE)),
        "weight_kg": first_value(row, field_columns(columns, 21002, IMAGING_INSTANCE)),
        "ethnic_background_code": code_text(ethnicity) if ethnicity else None,
        PROBLEM: problem,
    }


def read_ukbb_export(path: Path, groups: dict[str, str] | None = None) -> pl.DataFrame:
    """The canonical table of a UK Biobank export; DemographicsError for a wrong header."""
    table = read_csv_strings(path, "UK Biobank export")
    where = f"UK Biobank export {path}"
    for field, meaning in ((31, "sex"), (21000, "ethnic background")):
        if not field_columns(table.columns, field):
            raise DemographicsError(
                f"{where} lacks field {field} ({meaning}): no column like {field}-0.0; "
                f"found {', '.join(table.columns[:12]) or 'none'}"
            )
    table = table.rename({"participant.eid": "eid"}, strict=False)
    if "eid" not in table.columns:
        raise DemographicsError(f"{where} lacks required column eid")
    mapping = {
        code_text(code): group for code, group in (groups or DEFAULT_ETHNICITY_GROUPS).items()
    }
    rows = [canonical_row(row, table.columns, mapping) for row in table.to_dicts()]
    schema = dict.fromkeys(canonical_row({"eid": None}, [], mapping), pl.String)
    return require_unique_ids(pl.DataFrame(rows, schema=schema), where)
