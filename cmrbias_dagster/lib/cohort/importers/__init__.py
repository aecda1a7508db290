"""Importers: each cohort layout mapped to canonical ED/ES images, labels and demographics."""

from cmrbias_dagster.lib.cohort.importers import acdc, mnms1, mnms2, ukbb
from cmrbias_dagster.lib.cohort.importers.layout import CohortOptions, Layout, SubjectTable

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (ukbb.LAYOUT, mnms1.LAYOUT, mnms2.LAYOUT, acdc.LAYOUT)
}


def layout_named(name: str) -> Layout:
    """The layout called `name`; ValueError listing the known layouts otherwise."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown cohort layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


__all__ = ["LAYOUTS", "CohortOptions", "Layout", "SubjectTable", "layout_named"]
