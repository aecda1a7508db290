"""The house shows the study: lib/ has one package per stage, each saying what it may import and
importing only earlier stages; lib/ never imports Dagster; no asset module imports another for a
helper, and nothing but the code location imports an asset module; partitions come from the
design, never from a resource; the partition key is spelt in one module; the fresh training
process loads no Dagster."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cmrbias_dagster"
# Each stage after the stages it uses (lib/__init__.py).
STAGES = (
    "design",
    "cohort",
    "splits",
    "evaluation",
    "nnunet",
    "analysis",
    "probes",
    "external",
    "plots",
    "report",
)
# What every stage may import besides earlier stages.
SHARED_LIB_MODULES = ("outputs", "partitioned_tables")


def module_name(path: Path) -> str:
    """The dotted name of a module of the package, e.g. cmrbias_dagster.lib.design.study."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module (and `module.name`) the file imports, anywhere in it; relative imports
    resolved against the file's package."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def project_imports(path: Path) -> set[str]:
    return {name for name in imported_modules(path) if name.startswith("cmrbias_dagster.")}


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


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_only_earlier_stages(stage: str) -> None:
    allowed = {*STAGES[: STAGES.index(stage) + 1], *SHARED_LIB_MODULES}
    offenders = [
        (str(path.relative_to(PACKAGE)), name)
        for path in (PACKAGE / "lib" / stage).rglob("*.py")
        for name in project_imports(path)
        if name.split(".")[1] != "lib" or name.split(".")[2] not in allowed
    ]
    assert offenders == []


def test_only_the_code_location_imports_an_asset_module() -> None:
    """The runner (study_runner, run_execution, training_pool, cli), the resources, the
    automation and every other module outside assets/ import no asset module; definitions.py
    gathers the assets."""
    offenders = [
        (str(path.relative_to(PACKAGE)), name)
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "assets" and path.name != "definitions.py"
        for name in project_imports(path)
        if name.startswith("cmrbias_dagster.assets")
    ]
    assert offenders == []


def test_partitions_come_from_the_design_not_from_a_resource() -> None:
    imported = project_imports(PACKAGE / "partitions.py")
    assert [name for name in imported if name.startswith("cmrbias_dagster.resources")] == []


def strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module with their lines, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_only_the_partition_codec_spells_the_key_separator() -> None:
    """Outside lib/, no module writes a '|' in a string: a partition key is made and read by
    lib/design/partition.py alone."""
    offenders = [
        (str(path.relative_to(PACKAGE)), line, text)
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "lib"
        for line, text in strings(path)
        if "|" in text
    ]
    assert offenders == []


def test_the_fresh_training_process_end_loads_no_dagster() -> None:
    """The fresh training process imports the Pipes reporter and the trainer, never dagster."""
    code = (
        "import sys, cmrbias_dagster.training_progress.process_end, "
        "cmrbias_dagster.lib.nnunet.training\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_readme_names_every_module_and_package_at_the_package_root() -> None:
    table = (PACKAGE.parent / "README.md").read_text().split("## What is where", 1)[1]
    table = table.split("\n## ", 1)[0]
    root = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    root += [f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    assert [name for name in root if f"`cmrbias_dagster/{name}`" not in table] == []
