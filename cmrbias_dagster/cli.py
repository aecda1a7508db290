"""Command-line tools that need no Dagster: `python -m cmrbias_dagster.cli generate-cohort ...`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cmrbias_dagster.lib.cohort.synthetic import CohortSpec, cohort_is_complete, write_cohort
from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE, load_synthetic_cohort


def cohort_spec_from_study(
    study_path: Path, profile: str, seed: int | None = None, scanner: dict | None = None
) -> CohortSpec:
    """The cohort of `profiles.<profile>.synthetic_cohort`, seeded by the design's seed (or
    `seed`: other people), with `scanner`'s keys over the block's scanner shift; typed as the
    code location types it, so a misspelt key fails here too, by name."""
    settings, design_seed = load_synthetic_cohort(study_path, profile)
    mapping = settings.as_mapping()
    if scanner:
        mapping["scanner"] = {**(mapping.get("scanner") or {}), **scanner}
    return CohortSpec.from_mapping(mapping, seed=design_seed if seed is None else seed)


def scanner_options(args: argparse.Namespace) -> dict[str, float]:
    """The scanner shift given on the command line (the options left out are not shifted)."""
    given = {
        "contrast_gamma": args.scanner_gamma,
        "noise_scale": args.scanner_noise,
        "pixel_mm": args.scanner_pixel_mm,
    }
    return {key: value for key, value in given.items() if value is not None}


def generate_cohort(args: argparse.Namespace) -> int:
    """Write the profile's synthetic cohort unless an identical complete one is already there."""
    spec = cohort_spec_from_study(args.study, args.profile, args.seed, scanner_options(args))
    out = Path(args.out)
    if cohort_is_complete(out) and not args.force:
        written = json.loads((out / "COHORT.json").read_text())
        if written != spec.summary():
            print(
                f"{out} holds a different cohort (COHORT.json differs); use --force to replace it"
            )
            return 2
        print(f"{out} is complete; nothing to do (use --force to regenerate)")
        return 0
    write_cohort(spec, out, workers=args.workers)
    count = sum(n for by_sex in spec.subjects.values() for n in by_sex.values())
    print(f"wrote {count} subjects to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m cmrbias_dagster.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    cohort = commands.add_parser("generate-cohort", help="write the embedded synthetic cohort")
    cohort.add_argument("--profile", required=True, help="profile in the study YAML, e.g. quick")
    cohort.add_argument("--out", required=True, type=Path, help="cohort folder to write")
    cohort.add_argument("--study", type=Path, default=DEFAULT_STUDY_FILE)
    cohort.add_argument("--force", action="store_true", help="replace a complete cohort")
    cohort.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    shift = cohort.add_argument_group(
        "scanner shift", "an external test cohort from another scanner (docs/synthetic_cohort.md)"
    )
    shift.add_argument("--seed", type=int, help="another seed than the design's: other people")
    shift.add_argument("--scanner-gamma", type=float, help="contrast: signal ** gamma")
    shift.add_argument("--scanner-noise", type=float, help="noise SD multiplier")
    shift.add_argument("--scanner-pixel-mm", type=float, help="in-plane pixel (same field of view)")
    cohort.set_defaults(handler=generate_cohort)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
