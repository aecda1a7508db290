"""The report's "Calibration and uncertainty" section: each group's calibration and predictive
uncertainty in the band around the heart, and the gap between the groups beside the DSC gap."""

from collections.abc import Sequence

import polars as pl

from cmrbias_dagster.lib.analysis.calibration import (
    BAND_MARGIN_MM,
    GAP,
    N_BINS,
    OVERALL,
    calibration_gaps,
)
from cmrbias_dagster.lib.report.html import Section

TEXT = (
    "The ensemble's averaged softmax probabilities, measured in a band of {margin:g} mm around "
    'the union of the true and the predicted heart (docs/study.md, "Calibration and '
    'uncertainty"): ECE over {bins} equal-width confidence bins (top label), the multi-class '
    "Brier score and the mean predictive entropy (nats), each pooled over a group's voxels at "
    "both phases, with 95 % bootstrap CIs over test subjects. Gaps are the first group minus the "
    "second; dsc_gap is the overall median DSC gap of the headline (two-level CI), shown for "
    "comparison. A CI that covers 0 means no gap was detected, not that there is none."
)
GROUP_COLUMNS = ("experiment", "ratio", "group", "n_subjects", "ece", "ece_ci_low", "ece_ci_high")
GROUP_COLUMNS += ("brier", "brier_ci_low", "brier_ci_high", "entropy")


def calibration_section(
    calibration: pl.DataFrame, dsc_gaps: pl.DataFrame, figures: Sequence[tuple[str, bytes]]
) -> Section | None:
    """The section from `calibration_by_group` and `gap_verdicts`, with the reliability
    diagrams given; None while no calibration has been tabled."""
    if calibration.is_empty():
        return None
    overall = calibration.filter(pl.col("class") == OVERALL)
    return Section(
        "Calibration and uncertainty",
        TEXT.format(margin=BAND_MARGIN_MM, bins=N_BINS),
        tables=[
            ("Gaps between groups (overall)", calibration_gaps(calibration, dsc_gaps)),
            ("By group (overall)", overall.filter(pl.col("group") != GAP).select(GROUP_COLUMNS)),
        ],
        figures=list(figures),
    )
