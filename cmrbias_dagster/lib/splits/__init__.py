"""Stage 2, the splits: stable hash-ranked stratified draws of each experiment's test set and its
training split per ratio, subject-grouped cross-validation folds, and the checks that a draw
matches the design. May import `design`, `cohort` and `outputs`.
"""
