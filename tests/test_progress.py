"""The progress lines of batch jobs (``tailormind/progress.py``), with an injected clock: the exact
text, the throttle, the final line, and a line before anything is done. That a long command
prints them is checked on ``bench run`` in ``tests/test_cli_claims.py``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import tailormind.progress as progress_module
from tailormind.progress import ProgressLog


class Clock:
    """A settable ``time.monotonic``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The progress module's clock, set by the test (only that module's ``time`` is replaced)."""
    fake = Clock(1000.0)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=fake))
    return fake


def test_lines_rate_eta_and_throttle(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    log = ProgressLog("profile", "users", every_s=5.0)  # started at t = 1000
    log.plan(610)
    assert capsys.readouterr().out == "profile: 610 users to do\n"

    clock.now = 1030.0
    log(60)  # 60 users in 30 s: 2.00 users/s; 550 left: 275 s = 4m35s; 60/610 = 9.836%
    clock.now = 1032.0
    log(10)  # 2 s after the last line, not finished: throttled
    clock.now = 1060.0
    log(50)  # 120 users in 60 s: 2.00/s; 490 left: 245 s = 4m05s; 19.672%
    clock.now = 1061.0
    log(490)  # done: always printed, even 1 s after the last line; 610 in 61 s = 10.00/s
    assert capsys.readouterr().out.splitlines() == [
        "profile: 60/610 users (9.8%), 2.00 users/s, ETA 4m35s",
        "profile: 120/610 users (19.7%), 2.00 users/s, ETA 4m05s",
        "profile: 610/610 users (100.0%), 10.00 users/s, ETA 0m00s",
    ]


def test_slow_rates_and_long_etas(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    """Minutes past 59 are not wrapped into hours; rates print with two decimals (times chosen
    so every quotient is exact in binary floating point)."""
    log = ProgressLog("generate", "posts", total=100, every_s=0.0)
    clock.now = 1000.0 + 32.0
    log(1)  # 1 post in 32 s: 0.03125/s -> "0.03"; 99 left: 3168 s = 52m48s
    clock.now = 1000.0 + 2048.0
    log(9)  # 10 posts in 2048 s: 0.0048828125/s -> "0.00"; 90 left: 18432 s = 307m12s
    assert capsys.readouterr().out.splitlines() == [
        "generate: 1/100 posts (1.0%), 0.03 posts/s, ETA 52m48s",
        "generate: 10/100 posts (10.0%), 0.00 posts/s, ETA 307m12s"]


def test_a_line_before_anything_is_done_has_no_eta(clock: Clock,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A first report of 0 items (an empty batch) used to raise ValueError (int(inf // 60))."""
    log = ProgressLog("describe", "items", total=5)
    clock.now = 1010.0
    log(0)
    assert capsys.readouterr().out == "describe: 0/5 items (0.0%), 0.00 items/s, ETA ?\n"


def test_zero_total_is_complete(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    log = ProgressLog("bench tailormind", "posts", every_s=5.0)
    log.plan(0)
    clock.now = 1004.0
    log(0)  # done == total == 0: printed (not throttled), 100%
    assert capsys.readouterr().out.splitlines() == [
        "bench tailormind: 0 posts to do",
        "bench tailormind: 0/0 posts (100.0%), 0.00 posts/s, ETA ?"]


def test_the_readme_example_line_is_what_a_job_prints(clock: Clock,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    log = ProgressLog("profile", "users", total=610)
    clock.now = 1000.0 + 120 / 1.9  # 120 users at 1.9 users/s; 490 left: 257.9 s = 4m17s
    log(120)
    line = capsys.readouterr().out.strip()
    assert line == "profile: 120/610 users (19.7%), 1.90 users/s, ETA 4m17s"
    assert f"`{line}`" in readme
