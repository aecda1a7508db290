"""Which group each nnU-Net training case belongs to, and what of it enters the training stamp."""

import hashlib
import json
from collections.abc import Mapping, Sequence

import polars as pl

from cmrbias_dagster.lib.cohort.validation import PHASES
from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.splits.folds import case_id


def case_groups(split: pl.DataFrame, phases: Sequence[str] = PHASES) -> dict[str, str]:
    """Case id -> group for every phase of every subject of a training split (its `subject_id`
    and `group` columns): both phases of a subject are cases of the subject's group."""
    missing = [column for column in ("subject_id", "group") if column not in split.columns]
    if missing:
        raise ValueError(f"training split lacks columns {missing} needed to group its cases")
    ungrouped = split.filter(pl.col("group").is_null())["subject_id"].to_list()
    if ungrouped:
        raise ValueError(f"training split subjects without a group: {ungrouped[:10]}")
    return {
        case_id(subject, phase): group
        for subject, group in split.select("subject_id", "group").iter_rows()
        for phase in phases
    }


def mitigation_stamp(mitigation: Mitigation, groups: Mapping[str, str]) -> str:
    """What a mitigated training adds to its fold's training stamp: the strategy, its settings
    and the case -> group mapping (two experiments may draw the same cases yet group them by
    another attribute). "" when nothing is mitigated, leaving existing stamps as they were."""
    if not mitigation.active:
        return ""
    content = {"mitigation": mitigation.fingerprint(), "case_groups": sorted(groups.items())}
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]
