"""Stage 1, the cohort: importers that map each layout (UK Biobank, M&Ms-1/2, ACDC) to canonical
ED/ES images, labels and demographics; validation of each subject into the subject manifest
(geometry, labels, ground-truth clinical measures); the cohort's characteristics (Table 1);
and the synthetic cohort generator. May import `design` and `outputs`.
"""
