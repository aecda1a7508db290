"""The device session's benchmarks read what they claim: nnU-Net's per-epoch lines of a real
training, the cores a process tree uses, and a stop that leaves no training process behind."""

import subprocess
import sys
import time

import pytest

from bench.paper_fold import epochs_from_log, live, stop_descendants, summary
from bench.resource_sampler import ResourceSampler, descendant_depths, process_table
from tests.conftest import TINY_TRAINER

# A process that starts a CPU-burning child, then burns CPU itself for `seconds`.
SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass"
BURN = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {SPIN!r}, sys.argv[1]])
exec({SPIN!r})
child.wait()
"""
SLEEPERS = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
time.sleep(120)
"""


def test_epochs_from_log_match_the_checkpoints_history(planned_study, trained_study) -> None:
    import torch

    fold = next(planned_study.work.rglob(f"{TINY_TRAINER}/fold_0"))
    log = sorted(fold.glob("training_log_*.txt"))[-1].read_text()
    history = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    history = history["logging"]
    epochs = epochs_from_log(log)
    assert [e["epoch"] for e in epochs] == list(range(len(history["train_losses"])))
    for record, loss, val_loss, lr, dice in zip(
        epochs,
        history["train_losses"],
        history["val_losses"],
        history["lrs"],
        history["dice_per_class_or_region"],
        strict=True,
    ):
        assert record["train_loss"] == pytest.approx(loss, abs=1e-4)
        assert record["val_loss"] == pytest.approx(val_loss, abs=1e-4)
        assert record["learning_rate"] == pytest.approx(lr, abs=1e-5)
        assert record["pseudo_dice"] == pytest.approx(list(dice), abs=1e-4)
        assert record["epoch_s"] > 0
    figures = summary(epochs, iterations=2)
    assert figures["epochs"] == len(epochs)
    assert figures["train_loss_first_last"] == [epochs[0]["train_loss"], epochs[-1]["train_loss"]]


def test_a_log_cut_inside_an_epoch_counts_only_finished_epochs() -> None:
    finished = (
        "2026-12-07 18:33:30.198649: Epoch 0 \nx: Current learning rate: 0.01 \n"
        "x: train_loss 1.48 \nx: val_loss 1.40 \n"
        "x: Pseudo dice [np.float32(0.13), np.float32(0.2)] \nx: Epoch time: 4.34 s \n"
    )
    cut = "2026-12-07 18:33:34.629502: Epoch 1 \nx: Current learning rate: 0.00694 \n"
    epochs = epochs_from_log(finished + cut)
    assert epochs == [
        {
            "epoch": 0,
            "learning_rate": 0.01,
            "train_loss": 1.48,
            "val_loss": 1.40,
            "epoch_s": 4.34,
            "pseudo_dice": [0.13, 0.2],
        }
    ]
    assert summary([], iterations=250) == {"epochs": 0}


def test_the_sampler_sees_each_process_of_a_tree_and_its_cores() -> None:
    with ResourceSampler(interval_s=0.2) as used:
        subprocess.run([sys.executable, "-c", BURN, "1.5"], check=True)
    figures = used.summary()
    depths = figures["cores_per_process_by_depth"]
    assert set(depths) == {1, 2}  # the burner and its child
    assert depths[1]["processes"] == 1 and depths[2]["processes"] == 1
    assert depths[1]["mean"] > 0.2 and depths[2]["mean"] > 0.2  # two burners on >= 2 cores
    assert figures["machine_busy_cores"] >= depths[1]["mean"]
    assert "gpu_utilisation_mean_pct" not in figures  # no GPU here: no GPU figure invented


def test_stopping_a_training_tree_leaves_no_process_running() -> None:
    parent = subprocess.Popen([sys.executable, "-c", SLEEPERS])
    deadline = time.monotonic() + 20
    while len(descendant_depths(process_table(), parent.pid)) < 1:
        assert time.monotonic() < deadline, "the sleeper's child never started"
        time.sleep(0.1)
    tree = {parent.pid: 0, **descendant_depths(process_table(), parent.pid)}
    stop_descendants(parent.pid, grace_s=5)  # the child; the orphan-prone case
    parent.kill()
    parent.wait()
    assert not live(tree)
