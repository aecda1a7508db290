"""Which items to rebuild, from the input versions they were built from, requested once per version.

An item is an asset or one of its partitions. It is outdated when the version of its inputs it was
last built from is not their current version, or when it was never built. A sensor requests an
outdated item once per input version and keeps what it requested in its cursor until the item is
built from that version, so a tick never repeats a request that is queued, running or has failed.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field


class CursorError(ValueError):
    """A sensor cursor that this module did not write."""


@dataclass(frozen=True)
class RefreshPlan:
    """What one evaluation requests, and the requested versions to keep in the cursor."""

    requests: tuple[str, ...]
    requested: dict[str, str] = field(default_factory=dict)


def outdated(current: Mapping[str, str], built_from: Mapping[str, str | None]) -> dict[str, str]:
    """The items of `current` whose input version differs from the one they were built from."""
    return {item: version for item, version in current.items() if built_from.get(item) != version}


def plan_refresh(
    current: Mapping[str, str],
    built_from: Mapping[str, str | None],
    requested: Mapping[str, str],
) -> RefreshPlan:
    """Request every outdated item of `current` not already requested at its current version.

    The returned `requested` holds each outdated item at its current version, drops the items of
    `current` that are up to date, and keeps the entries of items outside `current` unchanged.
    """
    stale = outdated(current, built_from)
    requests = tuple(
        sorted(item for item, version in stale.items() if requested.get(item) != version)
    )
    kept = {item: version for item, version in requested.items() if item not in current}
    return RefreshPlan(requests, {**kept, **stale})


def encode_cursor(requested: Mapping[str, str]) -> str:
    """The cursor string for the requested versions (sorted JSON: equal cursors compare equal)."""
    return json.dumps({"requested": dict(requested)}, sort_keys=True)


def decode_cursor(cursor: str | None) -> dict[str, str]:
    """The requested versions kept in a cursor; an absent or empty cursor holds none."""
    if not cursor:
        return {}
    try:
        requested = json.loads(cursor)["requested"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CursorError(
            f"sensor cursor {cursor[:80]!r} is not {{'requested': {{item: version}}}} ({error}); "
            "clear it in the UI (the sensor's page -> cursor) to start afresh"
        ) from error
    if not isinstance(requested, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in requested.items()
    ):
        raise CursorError(f"sensor cursor {cursor[:80]!r}: 'requested' is not a map of strings")
    return requested
