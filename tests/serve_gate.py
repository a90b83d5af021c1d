"""``TextGate``: a deployment in front of the models app's ``TextModel`` that records every text
call and, while a test holds it, keeps calls waiting until the test lets them through. Work in
flight is then an event the test waits for, not a guess about how long something takes."""

from __future__ import annotations

import time
from typing import Any

GATE_APP = "tailormind-gate"


def gate_deployment() -> Any:
    """``TextGate``: the text role's Serve methods in front of the models app's ``TextModel``.
    Built in a function so Ray ships the class by value (the replica cannot import tests/)."""
    import asyncio

    from ray import serve

    @serve.deployment(name="TextGate", max_ongoing_requests=64,
                      ray_actor_options={"num_cpus": 0.05})
    class TextGate:
        def __init__(self) -> None:
            self.model = serve.get_deployment_handle("TextModel", app_name="tailormind-models")
            self.held, self.permits = False, 0
            self.log: list[list[str]] = []  # per call: each conversation's messages, joined
            self.changed = asyncio.Condition()

        async def chat_batch(self, request: tuple) -> list:
            async with self.changed:
                self.log.append(["\n".join(m["content"] for m in conversation)
                                 for conversation in request[0]])
                self.changed.notify_all()
                await self.changed.wait_for(lambda: not self.held or self.permits > 0)
                if self.held:
                    self.permits -= 1
            return await self.model.chat_batch.remote(request)

        async def hold(self) -> None:
            async with self.changed:
                self.held, self.permits = True, 0

        async def release(self, calls: int | None = None) -> None:
            """Let ``calls`` more calls through, or (None) open the gate."""
            async with self.changed:
                if calls is None:
                    self.held = False
                else:
                    self.permits += calls
                self.changed.notify_all()

        async def calls(self, at_least: int = 0, timeout_s: float = 0.0) -> list[list[str]]:
            """The calls so far, once there are ``at_least`` (or ``timeout_s`` passed)."""
            async with self.changed:
                try:
                    await asyncio.wait_for(
                        self.changed.wait_for(lambda: len(self.log) >= at_least), timeout_s)
                except TimeoutError:
                    pass
                return list(self.log)

    return TextGate.bind()


class Gate:
    """The test's side of ``TextGate``."""

    def __init__(self) -> None:
        from ray import serve

        self.handle = serve.get_deployment_handle("TextGate", app_name=GATE_APP)

    def hold(self) -> None:
        self.handle.hold.remote().result(timeout_s=60)

    def release(self, calls: int | None = None) -> None:
        self.handle.release.remote(calls).result(timeout_s=60)

    def calls(self, at_least: int = 0, timeout_s: float = 0.0) -> list[list[str]]:
        return self.handle.calls.remote(at_least, timeout_s).result(timeout_s=timeout_s + 60)

    def wait_for_call(self, marker: str, timeout_s: float = 180) -> int:
        """Block until a call whose conversations mention ``marker`` has arrived; the number of
        such calls."""
        deadline = time.monotonic() + timeout_s
        seen = self.calls()
        while time.monotonic() < deadline:
            found = marked(seen, marker)
            if found:
                return found
            seen = self.calls(at_least=len(seen) + 1, timeout_s=5)
        raise AssertionError(f"no text call mentioning {marker!r} within {timeout_s} s")


def marked(calls: list[list[str]], marker: str) -> int:
    return sum(1 for call in calls if any(marker in conversation for conversation in call))
