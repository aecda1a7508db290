"""The study as a pure library, one sub-package per stage, in the order the study runs them:
`design` (the study file and its typed profiles), `cohort`, `splits`, `nnunet`, `evaluation`,
`analysis`, `plots`, `report`; `outputs` (atomic files, tables, data versions) serves them all,
and `partitioned_tables` stores a partitioned table as one Parquet file per partition.
A stage imports only earlier stages and `outputs`.
Nothing here imports Dagster: the assets (cmrbias_dagster/assets) call into these packages.
"""
