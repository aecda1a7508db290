"""Frame indices from an information file, checked against the frames a subject has."""

from cmrbias_dagster.lib.cohort.volumes import SubjectError


def frame_index(
    subject_id: str, file: str, phase: str, text: str | None, first: int, count: int
) -> int:
    """The `phase` frame as an index in [first, first + count), or SubjectError naming `file`."""
    try:
        index = int(float(text or ""))
    except ValueError:
        raise SubjectError(subject_id, file, f"{phase} frame {text!r} is not a number") from None
    if not first <= index < first + count:
        raise SubjectError(
            subject_id,
            file,
            f"{phase} frame {index} is out of range: the subject has frames "
            f"{first}..{first + count - 1}",
        )
    return index
