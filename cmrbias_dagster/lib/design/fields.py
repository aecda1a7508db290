"""Typed fields of data/study.yaml: each check names the field, where it is and what it got."""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


class StudyDesignError(ValueError):
    """The study design file is missing a field or describes an impossible study."""


def ratios_field(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise StudyDesignError(f"{where}: field 'ratios' must be a non-empty list, got {raw!r}")
    ratios = tuple(integer_field(value, "ratios", where) for value in raw)
    if any(not 0 <= ratio <= 100 for ratio in ratios):
        raise StudyDesignError(f"{where}: field 'ratios' must lie in [0, 100], got {list(ratios)}")
    if list(ratios) != sorted(set(ratios)):
        raise StudyDesignError(
            f"{where}: field 'ratios' must be unique and ascending, got {list(ratios)}"
        )
    return ratios


def pair_field(raw: Any, key: str, where: str) -> tuple[str, str]:
    if not isinstance(raw, list) or len(raw) != 2 or len(set(map(str, raw))) != 2:
        raise StudyDesignError(f"{where}: field {key!r} must list two distinct values, got {raw!r}")
    return (text_field(raw[0], key, where), text_field(raw[1], key, where))


def required_field(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise StudyDesignError(f"{where}: missing required field {key!r}")
    return entry[key]


def mapping_field(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise StudyDesignError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def integer_field(raw: Any, key: str, where: str) -> int:
    # bool is an int subclass, and YAML reads `yes`/`no` as booleans.
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise StudyDesignError(f"{where}: field {key!r} must be an integer, got {raw!r}")
    return raw


def text_field(raw: Any, key: str, where: str) -> str:
    # YAML 1.1 turns unquoted yes/no/on/off into booleans; attribute values must stay strings.
    if not isinstance(raw, str) or not raw:
        raise StudyDesignError(f"{where}: field {key!r} must be a non-empty string, got {raw!r}")
    return raw


def settings_from_mapping(cls: type[T], mapping: Mapping[str, object] | None, block: str) -> T:
    """`cls(**mapping)`, with unknown keys refused by name (a typo must not pass silently)."""
    mapping = dict(mapping or {})
    known = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise ValueError(f"unknown {block} setting(s) {unknown}; known: {', '.join(known)}")
    return cls(**mapping)


def check_optional_count(value: object, least: int, name: str, block: str) -> None:
    """Refuse a setting that is neither None nor an integer >= `least` (a bool is not a count)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < least
    ):
        raise ValueError(f"{block} setting {name!r} must be >= {least}, got {value!r}")
