"""Running nnU-Net work in a fresh Python process.

nnU-Net forks worker pools and terminates them with SIGTERM. Forked from an orchestrator that turns
SIGTERM into an exception (Dagster does, during a step), those workers can die holding a pool lock
and hang the parent. nnU-Net's spawn pools also re-import the parent's __main__ in every worker,
which is slow when that is Dagster. So the work runs as
`python -m cmrbias_dagster.lib.nnunet.isolation`:
default signal handlers, a light __main__, nnU-Net's environment variables kept out of the caller,
and killed with the caller's step (subprocess.run kills it when the wait is interrupted).
"Default" includes SIGTERM and SIGINT when the caller inherited them *ignored* (a shell's
background job, `nohup`): ignored signals survive exec, nnU-Net's pool workers would then ignore
the SIGTERM that ends them, and the fold hangs in the pool's join after its final validation.
"""

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class FreshProcessError(RuntimeError):
    """The fresh process died without reporting a result (killed, or out of memory)."""


def run_in_fresh_process(
    function: Callable[..., Any],
    *args: Any,
    environment: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """Call a picklable top-level function in a new interpreter and return its result.

    `environment` adds variables to the child's environment (e.g. CUDA_VISIBLE_DEVICES). An
    exception in the child is raised here again, with the child's traceback in its notes.
    """
    with tempfile.TemporaryDirectory(prefix="cmrbias-call-") as folder:
        call, result = Path(folder, "call.pkl"), Path(folder, "result.pkl")
        call.write_bytes(pickle.dumps((function, args, kwargs)))
        completed = subprocess.run(
            [sys.executable, "-m", "cmrbias_dagster.lib.nnunet.isolation", str(call), str(result)],
            env={**os.environ, **(environment or {})},
            check=False,
        )
        if not result.is_file():
            raise FreshProcessError(
                f"{function.__qualname__} exited with code {completed.returncode} and no result"
            )
        ok, value, child_traceback = pickle.loads(result.read_bytes())
    if ok:
        return value
    value.add_note(f"in the fresh process:\n{child_traceback}")
    raise value


def restore_default_signals() -> None:
    """SIGTERM and SIGINT back to their defaults, whatever this process inherited."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _serve(call: Path, result: Path) -> None:
    restore_default_signals()
    function, args, kwargs = pickle.loads(call.read_bytes())
    try:
        outcome = (True, function(*args, **kwargs), "")
    except Exception as error:  # reported to the caller, which raises it again
        outcome = (False, error, traceback.format_exc())
    try:
        payload = pickle.dumps(outcome)
    except Exception:  # an unpicklable exception: send its text instead
        payload = pickle.dumps((False, RuntimeError(repr(outcome[1])), outcome[2]))
    result.write_bytes(payload)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))
