"""The numbers each mitigation trains with, from the training fold's cases and their groups:
group-balanced sampling probabilities, inverse-frequency loss weights and Group DRO's update."""

import math
from collections import Counter
from collections.abc import Mapping, Sequence


class UnknownCaseError(KeyError):
    """A training case that the case -> group mapping does not know."""


def groups_of(cases: Sequence[str], case_groups: Mapping[str, str]) -> list[str]:
    """The group of each case, in order; UnknownCaseError naming the cases without one."""
    missing = [case for case in cases if case not in case_groups]
    if missing:
        raise UnknownCaseError(
            f"{len(missing)} training case(s) have no group, e.g. {missing[:5]}; the mapping "
            f"knows {len(case_groups)} case(s)"
        )
    return [case_groups[case] for case in cases]


def balanced_sampling_probabilities(
    cases: Sequence[str], case_groups: Mapping[str, str]
) -> list[float]:
    """Per case, the probability that makes every group present among `cases` drawn equally
    often and the cases within a group uniformly: 1 / (groups present x cases in its group)."""
    groups = groups_of(cases, case_groups)
    counts = Counter(groups)
    return [1.0 / (len(counts) * counts[group]) for group in groups]


def inverse_frequency_weights(
    cases: Sequence[str], case_groups: Mapping[str, str]
) -> dict[str, float]:
    """Per case, the inverse of its group's share of `cases`, scaled to mean 1 over the cases
    (n / (groups present x cases in its group)): each group then carries the same total weight."""
    probabilities = balanced_sampling_probabilities(cases, case_groups)
    return {case: p * len(cases) for case, p in zip(cases, probabilities, strict=True)}


def uniform_group_weights(groups: Sequence[str]) -> dict[str, float]:
    """Group DRO's starting weights: equal over the distinct `groups`."""
    distinct = sorted(set(groups))
    return {group: 1.0 / len(distinct) for group in distinct}


def dro_update(
    weights: Mapping[str, float], group_losses: Mapping[str, float], step: float
) -> dict[str, float]:
    """One Group DRO step (Sagawa et al. 2020): q_g <- q_g exp(step loss_g), renormalised over the
    groups with a loss in this batch so that they keep their joint share; a group absent from the
    batch keeps its weight. With every group present this is Sagawa's update; nnU-Net's loss can be
    negative (minus the soft Dice), so an absent group must not count as a loss of 0."""
    unknown = sorted(set(group_losses) - set(weights))
    if unknown:
        raise ValueError(f"losses for groups {unknown} outside the weighted {sorted(weights)}")
    if not group_losses:
        return dict(weights)
    highest = max(group_losses.values())  # exp of differences: no overflow
    raised = {g: weights[g] * math.exp(step * (loss - highest)) for g, loss in group_losses.items()}
    scale = sum(weights[g] for g in group_losses) / sum(raised.values())
    return {g: raised[g] * scale if g in raised else q for g, q in weights.items()}


def error_bound_weights(group_errors: Mapping[str, float], gamma: float) -> dict[str, float]:
    """FairSeg's fair error-bound scaling weights (Tian et al., ICLR 2024, arXiv 2311.02189;
    `FairDiceLoss` in github.com/Harvard-Ophthalmology-AI-Lab/FairSeg): per group g of the batch,
    w_g = tanh((min_h E_h / E_g) ** gamma), E_g >= 0 the group's training error. The best-off
    group gets tanh(1) ~ 0.762, a group with twice its error tanh(0.5 ** gamma)."""
    negative = sorted(g for g, error in group_errors.items() if error < 0)
    if negative:
        raise ValueError(f"error bounds must be >= 0; groups {negative} have a negative one")
    if not group_errors:
        return {}
    lowest = min(group_errors.values())
    return {
        g: math.tanh(1.0 if error <= lowest else (lowest / error) ** gamma)
        for g, error in group_errors.items()
    }
