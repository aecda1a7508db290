"""GPU slots for fold training: at most `folds_per_gpu` processes train on one GPU at a time.

Each slot is one lock file, `gpu{gpu}_slot{slot}.lock`, held with `fcntl.flock` on an open file
descriptor. The kernel drops the lock when the descriptor closes, so a slot comes free when its
holder finishes, raises, or is killed (SIGKILL included) without any cleanup code running.

flock locks belong to an open file description, not to a process: a second `open` of the same
file, even in the holder's own process, conflicts with the lock. Probing and leasing therefore
need no registry of this process's own slots. The descriptor is not inherited by `subprocess`
children (Python opens it non-inheritable), but a bare `os.fork` shares it, and the slot then stays
held until the forked child exits too.
"""

import fcntl
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class GpuSlot:
    """One of `folds_per_gpu` places on a GPU; `gpu` is spelled as CUDA_VISIBLE_DEVICES wants it."""

    gpu: str
    slot: int

    def environment(self) -> dict[str, str]:
        """The environment variables that pin a training subprocess to this GPU."""
        return {"CUDA_VISIBLE_DEVICES": self.gpu}


class NoGpuSlotError(TimeoutError):
    """Every GPU slot stayed held for the whole wait."""


def slot_lock_path(lock_dir: Path, slot: GpuSlot) -> Path:
    """The lock file of `slot` in `lock_dir`."""
    return lock_dir / f"gpu{slot.gpu}_slot{slot.slot}.lock"


def held_slots(lock_dir: Path, gpus: Sequence[str], folds_per_gpu: int) -> list[GpuSlot]:
    """The slots that some process, this one included, holds now.

    A probe takes and drops a shared lock for an instant, so a lease racing with it may find that
    slot busy and try the next one.
    """
    return [slot for slot in _all_slots(gpus, folds_per_gpu) if _is_held(lock_dir, slot)]


@contextmanager
def lease_gpu(
    lock_dir: Path,
    gpus: Sequence[str],
    folds_per_gpu: int,
    timeout_s: float = 24 * 3600,
    poll_s: float = 1.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[GpuSlot]:
    """Hold a free slot on the least-loaded GPU for the `with` block, waiting up to `timeout_s`;
    `on_wait` hears once, in words, when every slot is taken and the caller starts to wait."""
    if folds_per_gpu < 1:
        raise ValueError(f"folds_per_gpu must be at least 1, got {folds_per_gpu}")
    gpus = list(dict.fromkeys(gpus))
    if not gpus:
        raise ValueError(f"no GPUs to lease in {lock_dir}: the GPU list is empty")
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    waiting = False
    while (lease := _try_lease(lock_dir, gpus, folds_per_gpu)) is None:
        if on_wait is not None and not waiting:
            on_wait(
                f"waiting for a free slot: all {folds_per_gpu} slot(s) of device(s) "
                f"{', '.join(gpus)} are taken (leases in {lock_dir})"
            )
        waiting = True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoGpuSlotError(
                f"no free GPU slot in {lock_dir} for gpus {gpus} at {folds_per_gpu} folds per GPU "
                f"after waiting {timeout_s:g} s"
            )
        time.sleep(min(poll_s, remaining))
    slot, fd = lease
    try:
        yield slot
    finally:
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def visible_gpus(
    environ: Mapping[str, str] = os.environ, device_count: Callable[[], int] | None = None
) -> list[str]:
    """GPU ids from CUDA_VISIBLE_DEVICES when set, else one per device torch sees."""
    listed = environ.get("CUDA_VISIBLE_DEVICES", "")
    if listed.strip():
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    count = (device_count or _torch_device_count)()
    return [str(index) for index in range(count)]


def _torch_device_count() -> int:
    # Imported here so that leasing and its tests do not pay for importing torch.
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _all_slots(gpus: Sequence[str], folds_per_gpu: int) -> list[GpuSlot]:
    # Slot-major: slot 0 of every GPU before slot 1 of any, so equal loads fill GPUs in turn.
    return [GpuSlot(gpu, slot) for slot in range(folds_per_gpu) for gpu in gpus]


def _is_held(lock_dir: Path, slot: GpuSlot) -> bool:
    try:
        fd = os.open(slot_lock_path(lock_dir, slot), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _try_lease(
    lock_dir: Path, gpus: Sequence[str], folds_per_gpu: int
) -> tuple[GpuSlot, int] | None:
    held = set(held_slots(lock_dir, gpus, folds_per_gpu))
    load = Counter(slot.gpu for slot in held)
    free = [slot for slot in _all_slots(gpus, folds_per_gpu) if slot not in held]
    # A stable sort keeps the slot-major order among GPUs that carry the same load.
    for slot in sorted(free, key=lambda candidate: load[candidate.gpu]):
        fd = _try_lock(slot_lock_path(lock_dir, slot))
        if fd is not None:
            return slot, fd
    return None


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat()}\n".encode())
    except OSError:
        os.close(fd)
        raise
    return fd
