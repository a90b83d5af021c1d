"""Progress lines for batch jobs, in a form `ray job logs` shows well (one line, no TTY tricks)."""

from __future__ import annotations

import time


class ProgressLog:
    """``profile: 120/610 users (19.7%), 1.90 users/s, ETA 4m17s``, at most every ``every_s``."""

    def __init__(self, label: str, unit: str, total: int = 0, every_s: float = 5.0) -> None:
        self.label, self.unit, self.total, self.every_s = label, unit, total, every_s
        self.done = 0
        self.started = time.monotonic()
        self.last = 0.0

    def plan(self, total: int) -> None:
        self.total = total
        print(f"{self.label}: {total} {self.unit} to do", flush=True)

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < self.every_s and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate else None  # nothing done yet: unknown
        eta = "?" if left is None else f"{int(left // 60)}m{int(left % 60):02d}s"
        share = 100 * self.done / self.total if self.total else 100.0
        print(f"{self.label}: {self.done}/{self.total} {self.unit} ({share:.1f}%), "
              f"{rate:.2f} {self.unit}/s, ETA {eta}", flush=True)
