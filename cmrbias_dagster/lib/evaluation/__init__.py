"""Stage 3, evaluation: per-class metrics of a predicted label map against the truth (DSC,
HD95, ASSD, volumes), the largest-component post-processing, every test case's metrics and
clinical measures read from a partition's predictions, and the calibration and uncertainty of
class probabilities in a band around the heart (`calibration`). It comes before `nnunet`, which
scores and post-processes its ensemble's predictions with it, and knows nothing of nnU-Net: it
reads label maps from files. May import `design`, `cohort` and `outputs`.
"""
