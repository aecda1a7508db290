"""Stage 3, evaluation: per-class metrics of a predicted label map against the truth (DSC,
HD95, ASSD, volumes), the largest-component post-processing, and every test case's metrics and
clinical measures read from a partition's predictions. It comes before `nnunet`, which scores
and post-processes its ensemble's predictions with it, and knows nothing of nnU-Net: it reads
label maps from files. May import `design` and `cohort`.
"""
