"""How often the two-level verdicts call a gap established, on simulated studies with a known
truth (lib/analysis/simulated_studies.py): the false-positive rate with no true gap and the power
for gaps of 1, 2, 3 and 5 times the model noise, at R = 1, 2, 3 and 5 training draws, for two
subject spreads; beside it, the same studies under plain Satterthwaite degrees of freedom (the
baseline the floor replaced). Run: python -m bench.verdict_power [--studies 200]."""

import argparse

import numpy as np
from scipy import stats

from cmrbias_dagster.lib.analysis.contrasts import median_gap
from cmrbias_dagster.lib.analysis.simulated_studies import NoiseModel, simulated_cube
from cmrbias_dagster.lib.analysis.two_level import ALPHA, TwoLevelEstimate, satterthwaite_df

MULTIPLES = (0, 1, 2, 3, 5)
REPEATS = (1, 2, 3, 5)


def plain_satterthwaite_p(estimate: TwoLevelEstimate, subject_df: float) -> float:
    """The baseline: the same variance, plain Satterthwaite degrees of freedom (no floor)."""
    if estimate.repeats == 1 or estimate.se == 0:
        return estimate.p_value
    df = satterthwaite_df(
        estimate.subject_var, subject_df, estimate.model_var, estimate.repeats - 1.0
    )
    return float(2 * stats.t.sf(abs(estimate.estimate) / estimate.se, df))


def rates(noise: NoiseModel, repeats: int, multiple: int, studies: int) -> tuple[float, float]:
    """Shares of `studies` simulated studies whose gap test rejects at ALPHA: the floored
    degrees of freedom (the platform's) and plain Satterthwaite's (the baseline)."""
    rng = np.random.default_rng(1000 * repeats + multiple)
    floored = plain = 0
    for study in range(studies):
        cube = simulated_cube(rng, noise, repeats, gap=multiple * noise.model)
        estimate = median_gap(cube, 0, seed=study, n_resamples=400)
        floored += estimate.p_value <= ALPHA
        plain += plain_satterthwaite_p(estimate, cube.subject_df) <= ALPHA
    return floored / studies, plain / studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    args = parser.parse_args()
    for subject in (0.005, 0.01):
        noise = NoiseModel(subject=subject)
        print(
            f"\nsubject spread {100 * subject:g} points, model noise {100 * noise.model:g} points"
            f" per repeat and group, residual {100 * noise.residual:g},"
            f" {noise.per_group} per group;"
            f" {args.studies} studies per cell: share established (alpha {ALPHA}),"
            " floored df (plain Satterthwaite df)"
        )
        print("R  | " + " | ".join(f"gap {m}x noise" for m in MULTIPLES))
        for repeats in REPEATS:
            row = [rates(noise, repeats, m, args.studies) for m in MULTIPLES]
            cells = [f"{100 * f:5.1f} % ({100 * p:.1f} %)" for f, p in row]
            print(f"{repeats}  | " + " | ".join(cells))


if __name__ == "__main__":
    main()
