"""Give freed memory back to the operating system after work, so a replica's resident size
returns near its baseline once a burst of requests is over.

CPython frees objects into glibc's heap arenas, and large temporary tensors on CPU do the same;
glibc keeps those pages mapped until ``malloc_trim`` is called. :class:`HeapTrimmer` runs
``gc.collect()`` and ``malloc_trim(0)`` at most once every ``interval_s`` seconds (each costs a
few milliseconds), and does nothing where glibc is not the allocator.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable


def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return None


class HeapTrimmer:
    """Call it after each piece of work. Within ``interval_s`` of the last trim, a call inside an
    event loop schedules one trim for when the interval is over, so the end of a burst is
    always trimmed; outside a loop it is skipped. ``clock`` is the monotonic clock the interval
    is measured on (the running loop's ``time()`` schedules the deferred trim; both are
    ``time.monotonic`` unless a test injects its own)."""

    def __init__(self, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._trim = _malloc_trim()
        self._last = 0.0
        self._pending = False
        self._lock = threading.Lock()
        self.trims = 0

    def __call__(self) -> None:
        wait = self.interval_s - (self._clock() - self._last)
        if wait <= 0:
            self.trim()
            return
        if self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = True
        loop.call_later(wait, self._deferred)

    def _deferred(self) -> None:
        self._pending = False
        self.trim()

    def trim(self) -> None:
        if not self._lock.acquire(blocking=False):
            return
        try:
            gc.collect()
            if self._trim is not None:
                self._trim(0)
            self.trims += 1
            self._last = self._clock()  # the interval counts from the end of a trim
        finally:
            self._lock.release()
