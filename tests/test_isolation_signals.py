"""The fresh nnU-Net process restores SIGTERM even when its caller inherited it ignored (a shell's
background job): nnU-Net ends its pool workers with SIGTERM, and workers that ignore it hang the
fold in the pool's join (seen once in a test run started with `nohup ... &`)."""

import signal

from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process


def sigterm_disposition() -> str:
    """What SIGTERM does in the process that runs this (pickled by reference)."""
    return {signal.SIG_DFL: "default", signal.SIG_IGN: "ignored"}.get(
        signal.getsignal(signal.SIGTERM), "handled"
    )


def test_the_fresh_process_does_not_inherit_an_ignored_sigterm() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        assert run_in_fresh_process(sigterm_disposition) == "default"
    finally:
        signal.signal(signal.SIGTERM, previous)
