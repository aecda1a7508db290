"""Typed settings from a block of a study profile in data/study.yaml."""

from collections.abc import Mapping
from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


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
