"""The study's partitions, declared once: experiment, and experiment x training ratio.

They follow the study design file (data/study.yaml, or the file named by CMRBIAS_STUDY_FILE),
read once when the code location loads.
"""

import os
from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE, load_study_design


def study_file() -> Path:
    """The study design file this code location is built from."""
    return Path(os.environ.get("CMRBIAS_STUDY_FILE", DEFAULT_STUDY_FILE))


STUDY_DESIGN = load_study_design(study_file())

experiment_partitions = dg.StaticPartitionsDefinition(STUDY_DESIGN.experiment_names)
ratio_partitions = dg.StaticPartitionsDefinition([str(r) for r in STUDY_DESIGN.ratios])
# Keys read "<experiment>|<ratio>" (Dagster joins the values in alphabetical order of the
# dimension names); lib/design/partition.py is their one codec.
study_partitions = dg.MultiPartitionsDefinition(
    {"experiment": experiment_partitions, "ratio": ratio_partitions}
)
# An asset partitioned by experiment feeds each experiment x ratio partition of its experiment:
# Dagster infers that mapping from the shared `experiment` dimension, so no asset declares it.
