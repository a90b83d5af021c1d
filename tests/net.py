"""Small helpers of the tests that run real servers: a free port, and waiting for an event."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until(condition: Callable[[], Any], what: str, timeout_s: float = 120,
          every_s: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy (an event, not a duration)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")
