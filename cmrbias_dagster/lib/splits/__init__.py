"""Stage 2, the splits: stable hash-ranked stratified draws of each experiment's test set and its
training split per ratio, subject-grouped cross-validation folds, the checks that a draw matches
the design, and whether the cohort holds enough subjects per stratum for the draws. May import
`design`, `cohort` and `outputs`.
"""
