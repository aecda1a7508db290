"""A step waiting for a pool slot sleeps instead of spinning a core.

Dagster 1.13's executors poll a full pool without sleeping: the in-process executor sleeps for
`InstanceConcurrencyContext.interval_to_next_pending_claim_check()`, which returns
`min(0, ...)`, never a positive wait, and the multiprocess executor's loop has no sleep at all
when every remaining step waits for a slot (dagster-io/dagster#20367 proposed the fix and was
closed unmerged). A run whose fold steps waited for the training pool held a core at ~96 %.
`install()` makes both wait until Dagster's own next claim check (its back-off: 1 s, growing to
15 s), at most `MAX_WAIT_SECONDS` at a time. Dagster is pinned below 1.14 for this.
"""

import time

from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

# Longest single sleep: how late an interrupt or a freed slot may be noticed.
MAX_WAIT_SECONDS = 1.0


def interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    """Seconds until the earliest waiting step may claim its slot again (0 when one may now)."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    soonest = min((ready_at - now for ready_at in self._pending_timeouts.values()), default=0.0)
    return min(MAX_WAIT_SECONDS, max(0.0, soonest))


_dagster_get_steps_to_execute = ActiveExecution.get_steps_to_execute


def get_steps_to_execute(self: ActiveExecution, limit: int | None = None):
    """Dagster's, then, when no step may start, none runs and some wait for a pool slot, a sleep
    until the next claim check (the multiprocess executor's loop would otherwise spin)."""
    steps = _dagster_get_steps_to_execute(self, limit=limit)
    if not steps and not self._in_flight:
        waiting = self._instance_concurrency_context
        if waiting is not None and waiting.has_pending_claims():
            time.sleep(interval_to_next_pending_claim_check(waiting))
    return steps


def install() -> None:
    """Patch Dagster's two polling loops in this process (idempotent)."""
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = (
        interval_to_next_pending_claim_check
    )
    ActiveExecution.get_steps_to_execute = get_steps_to_execute
