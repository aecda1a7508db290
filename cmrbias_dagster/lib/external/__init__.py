"""External test cohorts: second cohorts (the design's `external_test`) that the experiments'
models segment but were never trained on. Which of an experiment's groups each external subject
belongs to (only where the cohort records the attribute), its metrics with classes its truth
does not label left undefined, and the study's tables with the study's own test set (`internal`)
and each external cohort side by side, in a `test_cohort` column. May import `design`,
`evaluation` and `analysis`.
"""
