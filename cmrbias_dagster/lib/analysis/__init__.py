"""Stage 5, analysis: the paper's result tables (Table 2 and 3, clinical differences), group and
ratio comparisons (Mann-Whitney U, Wilcoxon, Holm, effect sizes), fairness metrics, mitigated
experiments beside the experiments they vary, and the findings in words, from the evaluation rows
of every partition. May import `design`, `evaluation` and `outputs`.
"""
