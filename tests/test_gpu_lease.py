import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from contextlib import ExitStack
from itertools import combinations
from pathlib import Path

import pytest

from cmrbias_dagster.lib.nnunet.device_leases import (
    GpuSlot,
    NoGpuSlotError,
    held_slots,
    lease_gpu,
    visible_gpus,
)

SPAWN = multiprocessing.get_context("spawn")


def hold_and_record(lock_dir: Path, record: Path) -> None:
    """Child process: lease a slot of 3 GPUs x 2, hold it ~0.3 s, and record when."""
    with lease_gpu(lock_dir, ["0", "1", "2"], folds_per_gpu=2, timeout_s=30, poll_s=0.02) as slot:
        entered = time.time()
        time.sleep(0.3)
        left = time.time()
    record.write_text(
        json.dumps({"gpu": slot.gpu, "slot": slot.slot, "pid": os.getpid(), "t": [entered, left]})
    )


def hold_forever(lock_dir: Path) -> None:
    """Child process: lease the only slot and never let go."""
    with lease_gpu(lock_dir, ["0"], folds_per_gpu=1, timeout_s=10):
        time.sleep(3600)


def test_leases_spread_over_gpus_and_wait_when_full(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    with lease_gpu(lock_dir, ["0", "1"], 1) as first:
        with lease_gpu(lock_dir, ["0", "1"], 1) as second:
            assert {first.gpu, second.gpu} == {"0", "1"}
            with (
                pytest.raises(NoGpuSlotError, match=str(lock_dir)),
                lease_gpu(lock_dir, ["0", "1"], 1, timeout_s=0.3, poll_s=0.05),
            ):
                pass
        with lease_gpu(lock_dir, ["0", "1"], 1, timeout_s=0.3) as third:
            assert third == second


def test_folds_per_gpu_packs_one_gpu(tmp_path: Path) -> None:
    with lease_gpu(tmp_path, ["0"], 2) as first, lease_gpu(tmp_path, ["0"], 2) as second:
        assert (first, second) == (GpuSlot("0", 0), GpuSlot("0", 1))
        assert first.environment() == {"CUDA_VISIBLE_DEVICES": "0"}
        started = time.monotonic()
        with (
            pytest.raises(NoGpuSlotError, match="2 folds per GPU"),
            lease_gpu(tmp_path, ["0"], 2, timeout_s=0.2, poll_s=0.05),
        ):
            pass
        assert time.monotonic() - started >= 0.2


def test_lease_prefers_the_least_loaded_gpu(tmp_path: Path) -> None:
    gpus = ["0", "1"]
    with ExitStack() as first_two:
        leased = [first_two.enter_context(lease_gpu(tmp_path, gpus, 2)) for _ in range(2)]
        assert leased == [GpuSlot("0", 0), GpuSlot("1", 0)]
        with lease_gpu(tmp_path, gpus, 2) as third:
            assert third == GpuSlot("0", 1)
            first_two.close()
            # Slot 0 of GPU 0 is free, but GPU 0 still trains a fold and GPU 1 none.
            with lease_gpu(tmp_path, gpus, 2) as fourth:
                assert fourth == GpuSlot("1", 0)


def test_held_slots_sees_this_process_own_leases(tmp_path: Path) -> None:
    assert held_slots(tmp_path, ["0", "1"], 2) == []
    with lease_gpu(tmp_path, ["0", "1"], 2) as slot:
        assert held_slots(tmp_path, ["0", "1"], 2) == [slot]
        assert "pid " in (tmp_path / f"gpu{slot.gpu}_slot{slot.slot}.lock").read_text()
    assert held_slots(tmp_path, ["0", "1"], 2) == []


def test_exception_in_the_block_releases_the_slot(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="training failed"), lease_gpu(tmp_path, ["0"], 1):
        raise RuntimeError("training failed")
    assert held_slots(tmp_path, ["0"], 1) == []
    with lease_gpu(tmp_path, ["0"], 1, timeout_s=0) as slot:
        assert slot == GpuSlot("0", 0)


def test_processes_never_share_a_slot_beyond_the_packing(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    records = [tmp_path / f"holder{i}.json" for i in range(9)]
    children = [SPAWN.Process(target=hold_and_record, args=(lock_dir, r)) for r in records]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
    assert [child.exitcode for child in children] == [0] * len(children)
    holders = [json.loads(record.read_text()) for record in records]
    assert len({holder["pid"] for holder in holders}) == len(children)
    for a, b in combinations(holders, 2):
        overlap = a["t"][0] < b["t"][1] and b["t"][0] < a["t"][1]
        assert not (overlap and (a["gpu"], a["slot"]) == (b["gpu"], b["slot"]))
    for instant in (holder["t"][0] for holder in holders):
        active = Counter(h["gpu"] for h in holders if h["t"][0] <= instant < h["t"][1])
        assert max(active.values()) <= 2


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    child = SPAWN.Process(target=hold_forever, args=(tmp_path,))
    child.start()
    try:
        deadline = time.monotonic() + 15
        while held_slots(tmp_path, ["0"], 1) != [GpuSlot("0", 0)]:
            assert time.monotonic() < deadline, "the child never took the slot"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=5)
        assert child.exitcode == -signal.SIGKILL
        with lease_gpu(tmp_path, ["0"], 1, timeout_s=2, poll_s=0.05) as slot:
            assert slot == GpuSlot("0", 0)
    finally:
        if child.is_alive():
            child.kill()
            child.join()


@pytest.mark.parametrize(("folds_per_gpu", "gpus"), [(0, ["0"]), (1, [])])
def test_lease_rejects_bad_arguments(tmp_path: Path, folds_per_gpu: int, gpus: list[str]) -> None:
    with pytest.raises(ValueError), lease_gpu(tmp_path, gpus, folds_per_gpu):
        pass


@pytest.mark.parametrize(
    ("environ", "count", "expected"),
    [
        ({"CUDA_VISIBLE_DEVICES": "2, 3"}, 8, ["2", "3"]),
        ({"CUDA_VISIBLE_DEVICES": "1,,"}, 8, ["1"]),
        ({}, 2, ["0", "1"]),
        ({"CUDA_VISIBLE_DEVICES": ""}, 2, ["0", "1"]),
        ({}, 0, []),
    ],
)
def test_visible_gpus(environ: dict[str, str], count: int, expected: list[str]) -> None:
    assert visible_gpus(environ, device_count=lambda: count) == expected


def test_a_waiting_step_hears_that_it_waits_and_which_slot_it_got(tmp_path: Path) -> None:
    """TrainingResource.run tells the step's log, once, that every slot is taken, then where it
    runs (the fold and ensemble assets pass context.log.info)."""
    import threading

    from cmrbias_dagster.resources import TrainingResource

    heard: list[str] = []
    training = TrainingResource(device="cpu", cpu_slots=1, lock_dir=str(tmp_path))
    with lease_gpu(tmp_path, ["cpu"], 1):
        worker = threading.Thread(
            target=training.run, args=(os.path.join, "slot"), kwargs={"log": heard.append}
        )
        worker.start()
        time.sleep(2.5)  # the worker polls once a second: it must have said once that it waits
        assert len(heard) == 1 and "waiting for a free slot" in heard[0] and "cpu" in heard[0]
    worker.join(timeout=60)
    assert heard[1:] == ["running on CPU slot 0 of 1"]
