"""`cmrbias`: the study from the command line (`cmrbias study|cohort|ui|report`, each with
--help). The profile is CMRBIAS_PROFILE's (default quick), as for the code location."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

PORT = 3000


def study(args: argparse.Namespace) -> int:
    """The whole study with its progress display (study_runner)."""
    from cmrbias_dagster.study_runner import run

    return run(args)


def cohort(args: argparse.Namespace) -> int:
    """The profile's synthetic cohort (cli.py's generate-cohort)."""
    from cmrbias_dagster import cli

    out = args.out or Path("data/raw") / f"synthetic_{args.profile}"
    return cli.main(["generate-cohort", "--profile", args.profile, "--out", str(out)])


def ui(args: argparse.Namespace) -> int:
    """Free what killed runs hold and set the pool's limit, then start `dagster dev`."""
    from cmrbias_dagster.training_pool import main as prepare_pool

    prepare_pool()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command)


def report(args: argparse.Namespace) -> int:
    """Where the study report is and the headline table, from the files the study wrote."""
    from cmrbias_dagster.definitions import defs
    from cmrbias_dagster.study_display import headline_table

    study_resource = defs.resources["study"]
    path = Path(study_resource.report_file())
    table = headline_table(study_resource.tables_folder())
    if not path.exists() or not table:
        print(f"no report yet at {path}: run the study first (cmrbias study, or make study)")
        return 1
    print(table)
    print(f"report: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `cmrbias` parser and its four subcommands."""
    parser = argparse.ArgumentParser(prog="cmrbias", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    from cmrbias_dagster.study_runner import DESCRIPTION, add_study_options

    run = commands.add_parser("study", help="run the whole study", description=DESCRIPTION)
    add_study_options(run).set_defaults(handler=study)
    write = commands.add_parser("cohort", help="write the profile's synthetic cohort")
    write.add_argument("--profile", default=os.environ.get("CMRBIAS_PROFILE", "quick"))
    write.add_argument("--out", type=Path, help="default: data/raw/synthetic_<profile>")
    write.set_defaults(handler=cohort)
    browse = commands.add_parser("ui", help="free killed runs' pool slots, then start the UI")
    browse.add_argument("--host", default="127.0.0.1")
    browse.add_argument("--port", type=int, default=PORT)
    browse.set_defaults(handler=ui)
    show = commands.add_parser("report", help="print where the report is and the headline table")
    show.set_defaults(handler=report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
