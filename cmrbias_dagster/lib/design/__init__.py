"""Stage 0, the study design: data/study.yaml read once per process into pydantic models
(experiments, ratios, the seed and each profile with its nnU-Net, training, prediction and
synthetic-cohort settings); a misspelt or mistyped key fails here, naming file, profile, block
and key. Each experiment x ratio is a `StudyPartition` (partition.py, the one codec of its key).
Imports nothing else of the project.
"""
