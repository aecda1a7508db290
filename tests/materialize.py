"""Materialising study assets in tests."""

import dagster as dg


def materialize_manifest(assets: list, resources: dict, instance: dg.DagsterInstance) -> None:
    """The subject manifest and its rejection list (one multi-asset, so always both)."""
    dg.materialize(
        assets,
        selection=["subject_manifest", "rejected_subjects"],
        resources=resources,
        instance=instance,
    )
