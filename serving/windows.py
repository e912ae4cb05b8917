"""Sliding-window event counts for throttling (failed sign-ins, receipt lookups), per client key.

In one process the counts live in memory. With `ANKANG_REDIS_URL` every replica counts in the same
Redis sorted sets, and a check-and-record is one Lua script, so N replicas together admit no more
than the limit (no sticky sessions needed).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Protocol

from serving.outages import REDIS_TIMEOUTS

# KEYS[1]: the client's set; ARGV: now, window, limit (0: record without a limit), member.
# Returns 1 if the event was recorded, 0 if the limit refused it.
_CHECK_AND_RECORD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""


class Windows(Protocol):
    def record(self, key: str, *, limit: int = 0, now: float | None = None) -> bool: ...

    def count(self, key: str, *, now: float | None = None) -> int: ...


class MemoryWindows:
    """One process's counts; at most `max_keys` clients are remembered (the oldest are forgotten)."""

    def __init__(self, *, window: float, max_keys: int = 10_000):
        self.window, self.max_keys = window, max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        return events

    def record(self, key: str, *, limit: int = 0, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        with self._lock:
            events = self._recent(key, moment)
            if limit and len(events) >= limit:
                return False
            events.append(moment)
            while len(self._events) > self.max_keys:
                del self._events[next(iter(self._events))]
            return True

    def count(self, key: str, *, now: float | None = None) -> int:
        with self._lock:
            events = self._recent(key, time.monotonic() if now is None else now)
            if not events:
                del self._events[key]
            return len(events)


class RedisWindows:
    """Counts shared by every replica, in Redis sorted sets `<prefix>:<key>` that expire with the window."""

    def __init__(self, url: str, *, prefix: str, window: float):
        import redis

        self.client = redis.Redis.from_url(url, **REDIS_TIMEOUTS)  # 1 s, no retries: an outage is a 503 at once
        self.prefix, self.window = prefix, window
        self._script = self.client.register_script(_CHECK_AND_RECORD)

    def record(self, key: str, *, limit: int = 0, now: float | None = None) -> bool:
        moment = time.time() if now is None else now  # wall clock: the replicas' monotonic clocks differ
        member = f"{moment:.6f}:{uuid.uuid4().hex[:8]}"
        keys = [f"{self.prefix}:{key}"]
        return bool(self._script(keys=keys, args=[moment, self.window, limit, member]))

    def count(self, key: str, *, now: float | None = None) -> int:
        moment = time.time() if now is None else now
        name = f"{self.prefix}:{key}"
        pipeline = self.client.pipeline()
        pipeline.zremrangebyscore(name, "-inf", moment - self.window)
        pipeline.zcard(name)
        return int(pipeline.execute()[1])


def windows(redis_url: str | None, *, prefix: str, window: float, max_keys: int = 10_000) -> Windows:
    """Redis-backed counts when a Redis URL is configured, else this process's own (at most `max_keys`)."""
    if redis_url:
        return RedisWindows(redis_url, prefix=prefix, window=window)
    return MemoryWindows(window=window, max_keys=max_keys)
