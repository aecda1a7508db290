"""The house shows the study: lib/ has one package per stage, each saying what it may import;
lib/ never imports Dagster; no asset module imports another for a helper."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cmrbias_dagster"
STAGES = ("design", "cohort", "splits", "nnunet", "evaluation", "analysis", "plots", "report")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_is_a_package_that_says_what_it_may_import(stage: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / "lib" / stage / "__init__.py").read_text()))
    assert docstring and "import" in docstring.lower()


def test_lib_top_level_holds_at_most_three_modules() -> None:
    assert len(list((PACKAGE / "lib").glob("*.py"))) <= 3


def test_lib_never_imports_dagster() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "lib").rglob("*.py")
        if any(name.split(".")[0] == "dagster" for name in imported_modules(path))
    ]
    assert offenders == []


def test_no_asset_module_imports_another() -> None:
    assets = {path.stem for path in (PACKAGE / "assets").glob("*.py")} - {"__init__"}
    offenders = [
        (path.stem, name)
        for path in (PACKAGE / "assets").glob("*.py")
        for name in imported_modules(path)
        if name.startswith("cmrbias_dagster.assets.") and name.split(".")[2] in assets
    ]
    assert offenders == []
