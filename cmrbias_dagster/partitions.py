"""The study's partitions, declared once: experiment, and experiment x training ratio.

They follow the study design file (data/study.yaml, or the file named by CMRBIAS_STUDY_FILE),
read once when the code location loads.
"""

import os
from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.design.study import DEFAULT_STUDY_FILE, load_study_design


def study_file() -> Path:
    """The study design file this code location is built from."""
    return Path(os.environ.get("CMRBIAS_STUDY_FILE", DEFAULT_STUDY_FILE))


STUDY_DESIGN = load_study_design(study_file())

experiment_partitions = dg.StaticPartitionsDefinition(STUDY_DESIGN.experiment_names)
ratio_partitions = dg.StaticPartitionsDefinition([str(r) for r in STUDY_DESIGN.ratios])
# Keys read "<experiment>|<ratio>": Dagster joins dimension values in alphabetical name order.
study_partitions = dg.MultiPartitionsDefinition(
    {"experiment": experiment_partitions, "ratio": ratio_partitions}
)
# An asset partitioned by experiment feeds each experiment x ratio partition of its experiment:
# Dagster infers that mapping from the shared `experiment` dimension, so no asset declares it.


def experiment_and_ratio(partition_key: str) -> tuple[str, int]:
    """The experiment name and training ratio of a study partition key."""
    if not isinstance(partition_key, dg.MultiPartitionKey):
        partition_key = study_partitions.get_partition_key_from_str(partition_key)
    by_dimension = partition_key.keys_by_dimension
    return by_dimension["experiment"], int(by_dimension["ratio"])
