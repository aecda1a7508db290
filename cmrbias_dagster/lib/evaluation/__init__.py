"""Stage 4, evaluation: per-class metrics of a predicted label map against the truth (DSC,
HD95, ASSD, volumes), the largest-component post-processing, and every test case's metrics and
clinical measures read from a partition's predictions. May import `design` and `cohort`.
"""
