"""A deduplicating, rate-limited queue of objects to reconcile.

The pattern of client-go's workqueue: a key queued several times is processed
once, with the object's newest state; one key is never processed by two
workers at once; a failure comes back after an exponential backoff; and a
token bucket bounds how fast work reaches the API server, so a burst of new
objects cannot starve every other object's status writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Key = tuple[str, str]  # namespace, name
MAX_BACKOFF_SECONDS = 60.0

log = logging.getLogger("phoenix.workqueue")


@dataclass(frozen=True)
class Limits:
    per_second: float
    burst: int


class WorkQueue:
    """Keys with a flag: whether processing must apply, or only report what runs."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._pending: dict[Key, bool] = {}  # insertion order is the processing order
        self._processing: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._changed = asyncio.Event()
        self._tokens = float(limits.burst)
        self._refilled = time.monotonic()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Key, *, apply: bool) -> None:
        self._pending[key] = self._pending.get(key, False) or apply
        self._changed.set()

    def _add_later(self, key: Key, delay: float, apply: bool) -> None:
        asyncio.get_running_loop().call_later(delay, lambda: self.add(key, apply=apply))

    async def _next(self) -> tuple[Key, bool]:
        while True:
            key = next((k for k in self._pending if k not in self._processing), None)
            if key is not None:
                return key, self._pending.pop(key)
            self._changed.clear()
            await self._changed.wait()

    async def _token(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(float(self.limits.burst), self._tokens + (now - self._refilled) * self.limits.per_second)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.limits.per_second)

    async def work(self, process: Callable[[Key, bool], Awaitable[bool]]) -> None:
        """Process keys forever. `process` returns False to be called again at once, ahead of the queue
        (the object changed under it); an exception retries after a backoff."""
        while True:
            await self._token()
            key, apply = await self._next()
            self._processing.add(key)
            try:
                done = await process(key, apply)
            except Exception as error:  # any failure of one object must not stop the rest
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1))
                log.warning("%s/%s failed (%s), retrying in %.0fs", *key, error, delay)
                self._add_later(key, delay, apply)
            else:
                self._failures.pop(key, None)
                if not done:
                    # changed under it, most often by its own acknowledgement landing: next, from the newer
                    # state, rather than behind every key queued since
                    self._pending = {key: self._pending.get(key, False), **self._pending}
            finally:
                self._processing.discard(key)
                self._changed.set()
