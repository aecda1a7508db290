"""A paper-profile fold through the platform's training path for as many epochs as a time budget
allows: does the paper recipe learn in the pipeline (loss falling, pseudo-Dice rising), and what
does an epoch cost?

Builds a paper-sized partition (bench/throughput_data.py: 176 subjects = 352 cases at 208x208x10,
1.8 mm, the paper profile's plan edit: 2d, batch 16) and trains fold 0 with the paper profile's
training settings unchanged (500 epochs x 250 iterations, SGD, poly schedule: the first epochs of
the real schedule, not a shortened one) through the fold-checkpoint asset's path (device slot
lease -> fresh process -> lib.nnunet.training.train_fold), then stops it after --budget-s and
reads nnU-Net's own per-epoch lines. torch.compile is as nnU-Net decides (on by default on a GPU,
as in the pipeline): the first epoch includes it, and the median epoch after it is the cost.
Dagster's run machinery is left out: the platform's stack (Dagster, Polars, PyArrow, DuckDB: ~140
MB of wheels) does not fit a bare GPU machine's 64 MiB carry, and the training path is the same
function the asset calls.
Any CUDA machine: python -m bench.paper_fold [--budget-s 240]
CPU smoke check:  python -m bench.paper_fold --device cpu   (tiny profile; not the paper's figure)
"""

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import threading
import time
from pathlib import Path

from bench.resource_sampler import ResourceSampler, descendant_depths, process_table
from bench.throughput_data import DATASET, build_partition
from bench.train_throughput import in_pipeline
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.nnunet.isolation import FreshProcessError

PRESETS = {
    "cuda": dict(profile="paper", per_group=44, budget_s=240.0),
    "cpu": dict(profile="tiny", per_group=4, budget_s=120.0),
}
EPOCH_FIELDS = {
    "learning_rate": r"Current learning rate: ([-0-9.e]+)",
    "train_loss": r"train_loss ([-0-9.e]+)",
    "val_loss": r"val_loss ([-0-9.e]+)",
    "epoch_s": r"Epoch time: ([0-9.]+) s",
}


def epochs_from_log(text: str) -> list[dict]:
    """nnU-Net's training log as one record per finished epoch (one with its epoch time)."""
    parts, records = re.split(r": Epoch (\d+) *\n", text), []
    for number, block in zip(parts[1::2], parts[2::2], strict=True):
        record = {"epoch": int(number)}
        for field, pattern in EPOCH_FIELDS.items():
            if found := re.search(pattern, block):
                record[field] = float(found.group(1))
        if found := re.search(r"Pseudo dice \[(.*?)\]", block):
            values = re.sub(r"np\.float\d+\(|\)", "", found.group(1)).split(",")
            record["pseudo_dice"] = [float(value) for value in values if value.strip()]
        if "epoch_s" in record:
            records.append(record)
    return records


def stop_descendants(root: int, grace_s: float = 15.0) -> None:
    """SIGTERM to every process `root` started (the training and its workers, taken before any
    dies, so orphaned workers are not missed), then SIGKILL to those still there after
    `grace_s`."""
    pids = descendant_depths(process_table(), root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and live(pids):
            time.sleep(0.2)


def live(pids: dict[int, int]) -> bool:
    """Whether any of `pids` still runs (a zombie waiting for its parent does not)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
    return False


def train_for(env, settings, device: str, lock: Path, budget_s: float) -> bool:
    """Train fold 0 until it finishes or `budget_s` passes; True when it finished."""
    outcome: dict[str, object] = {}

    def train() -> None:
        try:
            in_pipeline(env, 0, settings, lock, 1, device)
            outcome["finished"] = True
        except (FreshProcessError, FileNotFoundError, IndexError) as stopped:
            outcome["stopped"] = stopped

    worker = threading.Thread(target=train)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        stop_descendants(os.getpid())
        worker.join()
    return bool(outcome.get("finished"))


def summary(epochs: list[dict], iterations: int) -> dict:
    """What the epochs show: cost, and whether the loss fell and the pseudo-Dice rose."""
    if not epochs:
        return {"epochs": 0}
    timed = [e["epoch_s"] for e in epochs[1:]] or [epochs[0]["epoch_s"]]
    dice = [statistics.mean(e["pseudo_dice"]) for e in epochs if e.get("pseudo_dice")]
    return {
        "epochs": len(epochs),
        "median_epoch_s": statistics.median(timed),
        "iterations_per_s": iterations / statistics.median(timed),
        "train_loss_first_last": [epochs[0].get("train_loss"), epochs[-1].get("train_loss")],
        "mean_pseudo_dice_first_last": [dice[0], dice[-1]] if dice else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(PRESETS), default="cuda")
    parser.add_argument("--budget-s", type=float, help="stop the training after this long")
    parser.add_argument("--threads", type=int, default=8, help="for data and planning")
    parser.add_argument("--out", type=Path, default=Path("/tmp/paper_fold"))
    parser.add_argument(
        "--partition", type=Path, help="a folder bench.train_throughput already built: reuse it"
    )
    args = parser.parse_args()
    preset = PRESETS[args.device]
    budget_s = args.budget_s or preset["budget_s"]
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    settings = design.profile(preset["profile"]).training
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.partition:
        env = NnunetEnvironment(*(args.partition / f for f in ("raw", "preprocessed", "results")))
    else:
        env = build_partition(
            design, preset["profile"], preset["per_group"], 5, args.out, args.threads
        )
    figures: dict = {
        "profile": preset["profile"],
        "data_and_plans_s": round(time.monotonic() - started),
    }
    with ResourceSampler() as used:
        figures["finished"] = train_for(env, settings, args.device, args.out / "locks", budget_s)
    folder = fold_folder(env, DATASET, 0, trainer_folder(settings))
    logs = sorted(folder.glob("training_log_*.txt"))
    epochs = epochs_from_log(logs[-1].read_text()) if logs else []
    figures |= summary(epochs, settings.iterations_per_epoch)
    figures |= {"budget_s": budget_s, "resources": used.summary(), "per_epoch": epochs}
    (args.out / "paper_fold.json").write_text(json.dumps(figures, indent=2))
    print(f"[bench] {json.dumps({k: v for k, v in figures.items() if k != 'per_epoch'})}")
    for epoch in epochs:
        dice = ", ".join(f"{value:.3f}" for value in epoch.get("pseudo_dice", []))
        losses = f"train_loss {epoch.get('train_loss')}, val_loss {epoch.get('val_loss')}"
        print(
            f"[bench] epoch {epoch['epoch']}: {epoch['epoch_s']:.1f} s, "
            f"lr {epoch.get('learning_rate')}, {losses}, pseudo-Dice [{dice}]"
        )


if __name__ == "__main__":
    main()
