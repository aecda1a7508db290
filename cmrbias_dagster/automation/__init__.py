"""Automation: refresh the cheap assets when the raw cohort changes, then train only the partitions
whose training split changed (sensors), with a nightly catch-up for training (schedule).

Both follow one rule (`lib/refresh_plan.py`): an item is rebuilt when the version of its input it
was last built from, the latest version recorded before it, is not the input's current version.
"""

from cmrbias_dagster.automation.cohort_sensor import cohort_sensor
from cmrbias_dagster.automation.training_sensor import nightly_training_schedule, training_sensor

__all__ = ["cohort_sensor", "nightly_training_schedule", "training_sensor"]
