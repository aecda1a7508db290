"""Protected models (docs/mitigation.md): one model per group, each test subject segmented by the
model of its own group. Routing only; training one model per group is not wired yet."""

from collections.abc import Mapping


class MissingGroupModelError(KeyError):
    """A test subject whose group has no model of its own and no fallback was allowed."""


def route_to_group_models(
    subject_groups: Mapping[str, str],
    group_models: Mapping[str, str],
    fallback: str | None = None,
) -> dict[str, str]:
    """Subject id -> the model (e.g. a fold folder) that segments it: its group's model, else
    `fallback` (the model of the only group trained at ratio 0 or 100), else an error naming
    the subjects left without one."""
    unrouted = sorted(s for s, g in subject_groups.items() if g not in group_models)
    if unrouted and fallback is None:
        groups = sorted({subject_groups[subject] for subject in unrouted})
        raise MissingGroupModelError(
            f"no model for group(s) {groups} of test subject(s) {unrouted[:10]}; models exist "
            f"for {sorted(group_models)}"
        )
    return {
        subject: group_models.get(group, fallback)  # type: ignore[misc]
        for subject, group in subject_groups.items()
    }
