"""Stage 4, nnU-Net: the raw dataset, fingerprint, plans and preprocessing, fold training
(resumable, stamped), the softmax-averaged ensemble prediction, fresh-process isolation and the
device leases that bound concurrent folds. The only package that talks to nnunetv2 and torch
(imported lazily, inside fresh processes). May import `design`, `cohort`, `splits`, `evaluation`
(post-processing, Dice) and `outputs`.
"""
