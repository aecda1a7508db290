"""Automation as Declarative Automation conditions: refresh the cheap assets when the raw cohort
changes (running by default), retrain only the partitions whose training split changed and retry
failed training nightly (stopped by default). See docs/automation.md."""

from cmrbias_dagster.automation.cohort_observation import cohort_observation_sensor
from cmrbias_dagster.automation.conditions import (
    automate,
    cohort_sensor,
    observe_cohort_job,
    training_sensor,
)

__all__ = [
    "automate",
    "cohort_observation_sensor",
    "cohort_sensor",
    "observe_cohort_job",
    "training_sensor",
]
