"""The name of a fold's checkpoint asset, for the factory that defines it and the assets that wait
for every fold (the ensembles, the convergence table)."""

import dagster as dg


def fold_checkpoint_name(fold: int) -> str:
    """`fold_<k>_checkpoint`: the model trained with fold k held out."""
    return f"fold_{fold}_checkpoint"


def fold_checkpoint_keys(n_folds: int) -> list[dg.AssetKey]:
    """The checkpoint assets of folds 0 .. n_folds - 1."""
    return [dg.AssetKey(fold_checkpoint_name(fold)) for fold in range(n_folds)]
