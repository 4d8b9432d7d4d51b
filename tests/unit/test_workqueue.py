"""The operator's work queue: deduplication, one worker per key, retries, the rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from phoenix_operator.handlers import workqueue

FAST = workqueue.Limits(per_second=1000.0, burst=1000)
Process = Callable[[workqueue.Key, bool], Awaitable[bool]]


async def _run(queue: workqueue.WorkQueue, process: Process, until: Callable[[], bool], workers: int = 1) -> None:
    tasks = [asyncio.create_task(queue.work(process)) for _ in range(workers)]
    try:
        deadline = time.monotonic() + 60  # a stall fails; a busy machine's slowness does not
        while not until():
            assert time.monotonic() < deadline, "the queue stalled"
            await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_key_queued_many_times_is_processed_once_and_applies_if_any_asked() -> None:
    seen: list[tuple[workqueue.Key, bool]] = []

    async def process(key: workqueue.Key, apply: bool) -> bool:
        seen.append((key, apply))
        return True

    async def scenario() -> None:
        queue = workqueue.WorkQueue(FAST)
        for apply in (False, True, False):
            queue.add(("ns", "a"), apply=apply)
        queue.add(("ns", "b"), apply=False)
        assert len(queue) == 2
        await _run(queue, process, lambda: len(seen) == 2)

    asyncio.run(scenario())
    assert seen == [(("ns", "a"), True), (("ns", "b"), False)]


def test_a_key_is_never_processed_twice_at_once_and_a_change_meanwhile_runs_after() -> None:
    running: set[workqueue.Key] = set()
    overlaps: list[workqueue.Key] = []
    calls: list[workqueue.Key] = []

    async def process(key: workqueue.Key, apply: bool) -> bool:
        if key in running:
            overlaps.append(key)
        running.add(key)
        calls.append(key)
        if len(calls) == 1:
            queue.add(key, apply=True)  # the object changed while it was being processed
        await asyncio.sleep(0.05)
        running.discard(key)
        return True

    queue = workqueue.WorkQueue(FAST)

    async def scenario() -> None:
        queue.add(("ns", "a"), apply=True)
        await _run(queue, process, lambda: len(calls) == 2 and not running, workers=3)

    asyncio.run(scenario())
    assert calls == [("ns", "a"), ("ns", "a")]
    assert overlaps == []


def test_a_failure_is_retried_after_a_backoff_and_a_conflict_at_once() -> None:
    calls: list[tuple[float, bool]] = []

    async def process(key: workqueue.Key, apply: bool) -> bool:
        calls.append((time.monotonic(), apply))
        if len(calls) == 1:
            raise RuntimeError("the API server said 500")
        return len(calls) > 2  # the second call meets a conflict: run again, without applying

    async def scenario() -> None:
        queue = workqueue.WorkQueue(FAST)
        queue.add(("ns", "a"), apply=True)
        await _run(queue, process, lambda: len(calls) == 3)

    asyncio.run(scenario())
    assert [apply for _, apply in calls] == [True, True, False]
    assert calls[1][0] - calls[0][0] >= 0.9  # the first backoff is one second


def test_a_conflict_runs_again_before_the_keys_queued_behind_it() -> None:
    seen: list[tuple[str, bool]] = []

    async def process(key: workqueue.Key, apply: bool) -> bool:
        seen.append((key[1], apply))
        return key[1] != "a" or len(seen) > 1

    async def scenario() -> None:
        queue = workqueue.WorkQueue(FAST)
        for name in "abc":
            queue.add(("ns", name), apply=True)
        await _run(queue, process, lambda: len(seen) == 4)

    asyncio.run(scenario())
    assert seen == [("a", True), ("a", False), ("b", True), ("c", True)]


def test_work_beyond_the_burst_goes_at_the_configured_rate() -> None:
    done: list[workqueue.Key] = []

    async def process(key: workqueue.Key, apply: bool) -> bool:
        done.append(key)
        return True

    async def scenario() -> float:
        queue = workqueue.WorkQueue(workqueue.Limits(per_second=20.0, burst=5))
        for i in range(25):
            queue.add(("ns", f"p{i}"), apply=True)
        began = time.monotonic()
        await _run(queue, process, lambda: len(done) == 25)
        return time.monotonic() - began

    elapsed = asyncio.run(scenario())
    assert elapsed >= (25 - 5) / 20.0 * 0.95
    assert done == [("ns", f"p{i}") for i in range(25)]  # in the order they came
