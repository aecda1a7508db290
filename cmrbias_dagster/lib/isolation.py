"""Running nnU-Net work in a fresh Python process.

nnU-Net forks worker pools and terminates them with SIGTERM. Forked from an orchestrator that
turns SIGTERM into an exception (Dagster does, during a step), those workers can die holding a
pool lock and hang the parent. A freshly spawned process has default signal handlers, and its
nnU-Net environment variables stay out of the orchestrator's process.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def run_in_fresh_process(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a picklable top-level function in a newly spawned process and return its result."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()
