"""The study as a pure library, one sub-package per stage, each after the stages it uses:
`design` (the study file, its typed profiles and partitions), `cohort`, `splits`, `evaluation`
(metrics and post-processing of label maps), `nnunet` (whose ensemble scores and post-processes
its predictions with `evaluation`), `analysis`, `probes` (attribute probes on images, masks and
the models' encoder features), `external` (external test cohorts beside the study's test set),
`plots`, `report`; `outputs` (atomic files,
tables, data versions) serves them all, and `partitioned_tables` stores a partitioned table as
one Parquet file per partition. A stage imports only earlier stages and `outputs`
(tests/test_layout.py holds the order).
Nothing here imports Dagster: the assets (cmrbias_dagster/assets) call into these packages.
"""
