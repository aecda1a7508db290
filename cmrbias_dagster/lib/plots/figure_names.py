"""Each figure's file name under figures/ (without `.png`): the figure assets write these files
and the report reads them, both from this one table."""

from collections.abc import Sequence

DSC_BY_RATIO = "fig2_dsc_by_ratio"
DSC_BY_CLASS = "fig3_dsc_by_class"
CLINICAL_DIFFERENCES = "fig4_clinical_differences"
FAIRNESS = "fairness"
COHORT_DISTRIBUTIONS = "cohort_distributions"
MITIGATION = "mitigation"
REPEATS = "repeats"
BOUNDARY_BY_RATIO = "boundary_by_ratio"
DSC_BY_TEST_COHORT = "dsc_by_test_cohort"
PROBE_SALIENCY = "attribute_probe_saliency"


def qualitative(experiment: str) -> str:
    """The qualitative figure of one experiment: its best, median and worst test subjects."""
    return f"qualitative_{experiment}"


def reliability(experiment: str) -> str:
    """The reliability diagram of one experiment: its groups' calibration at each ratio."""
    return f"reliability_{experiment}"


def all_figures(experiments: Sequence[str]) -> tuple[str, ...]:
    """Every figure the study draws, the qualitative one once per experiment."""
    return (
        DSC_BY_RATIO,
        DSC_BY_CLASS,
        CLINICAL_DIFFERENCES,
        FAIRNESS,
        COHORT_DISTRIBUTIONS,
        MITIGATION,
        REPEATS,
        BOUNDARY_BY_RATIO,
        *(qualitative(experiment) for experiment in experiments),
        *(reliability(experiment) for experiment in experiments),
        DSC_BY_TEST_COHORT,
        PROBE_SALIENCY,
    )
