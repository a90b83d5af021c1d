"""The job book's rules without Ray: atomic submit, one claim per attempt, leases that expire into
a re-queue and then a failure after ``max_attempts``, cancels, only the holder's outcome counts,
the queue bound, records that survive a restart, and a corrupt record reported, not skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailormind.errors import CorruptFileError
from tailormind.serve.api_jobs import JobBook, JobStore, Overloaded

JOB = "post-0123456789ab"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _spec(job_id: str = JOB) -> dict:
    return {"job_id": job_id, "user_id": "u1", "kind": "post", "platform": "rednote",
            "seed": 7, "steps": 6}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _book(root: Path, clock: Clock, **limits) -> JobBook:
    options = {"lease_s": 30.0, "max_attempts": 2, "max_queued_s": 600.0, "max_pending": 3}
    return JobBook(JobStore(root), clock=clock, **{**options, **limits})


def test_submit_is_idempotent_while_active_and_bounded(tmp_path: Path, clock: Clock) -> None:
    book = _book(tmp_path, clock)
    first, created = book.submit(_spec())
    again, created_again = book.submit(_spec())
    assert (created, created_again) == (True, False)
    assert again == first and first["status"] == "queued" and first["attempts"] == 0
    book.submit(_spec("post-0000000000a1"))
    book.submit(_spec("post-0000000000a2"))
    with pytest.raises(Overloaded, match="3 generation jobs"):
        book.submit(_spec("post-0000000000a3"))
    # an ended job is replaced by a new one
    book.claim(JOB, "w1")
    book.finish(JOB, "w1", "failed", error="boom")
    renewed, created = book.submit(_spec())
    assert created and renewed["status"] == "queued" and renewed["attempts"] == 0


def test_one_claim_per_attempt_and_only_the_holder_finishes(tmp_path: Path, clock: Clock) -> None:
    book = _book(tmp_path, clock)
    book.submit(_spec())
    claimed = book.claim(JOB, "w1")
    assert claimed["status"] == "running" and claimed["owner"] == "w1"
    assert claimed["attempts"] == 1 and claimed["lease_expires_at"] == 1_030.0
    assert book.claim(JOB, "w2") is None
    assert book.renew(JOB, "w2") == {"held": False, "cancel": True}
    assert book.finish(JOB, "w2", "done") is None
    clock.now += 20
    progress = {"stage": "writing", "step": 3, "of": 6}
    assert book.renew(JOB, "w1", progress) == {"held": True, "cancel": False}
    assert book.get(JOB)["lease_expires_at"] == 1_050.0 and book.get(JOB)["progress"] == progress
    done = book.finish(JOB, "w1", "done", post_id=JOB)
    assert done["status"] == "done" and done["owner"] is None
    assert done["progress"] == {"stage": "done", "step": 6, "of": 6}
    with pytest.raises(ValueError):
        book.finish(JOB, "w1", "running")


def test_an_expired_lease_requeues_then_fails_after_max_attempts(tmp_path: Path,
                                                                clock: Clock) -> None:
    book = _book(tmp_path, clock)
    book.submit(_spec())
    book.claim(JOB, "w1")
    clock.now += 30  # exactly at the deadline: still held
    assert book.expire() == [] and book.get(JOB)["status"] == "running"
    clock.now += 0.5
    [requeued] = book.expire()
    assert requeued["status"] == "queued" and requeued["owner"] is None
    assert requeued["lost"] == ["attempt 1: lease not renewed for 30 s (its worker stopped)"]
    assert book.renew(JOB, "w1")["held"] is False  # the old worker learns it lost the job
    second = book.claim(JOB, "w2")
    assert second["attempts"] == 2
    clock.now += 31
    [failed] = book.expire()
    assert failed["status"] == "failed" and "lost 2 times (api.max_attempts = 2)" in failed["error"]
    assert book.claim(JOB, "w3") is None


def test_queued_too_long_fails(tmp_path: Path, clock: Clock) -> None:
    book = _book(tmp_path, clock, max_queued_s=60)
    book.submit(_spec())
    clock.now += 60
    assert book.expire() == []
    clock.now += 1
    [failed] = book.expire()
    assert failed["status"] == "failed" and "api.max_queued_s" in failed["error"]


def test_cancel_queued_at_once_running_through_the_worker(tmp_path: Path, clock: Clock) -> None:
    book = _book(tmp_path, clock)
    book.submit(_spec())
    assert book.cancel(JOB)["status"] == "cancelled"
    assert book.claim(JOB, "w1") is None
    book.submit(_spec())
    book.claim(JOB, "w1")
    flagged = book.cancel(JOB)
    assert flagged["status"] == "running" and flagged["cancel_requested"]
    assert book.renew(JOB, "w1") == {"held": True, "cancel": True}
    assert book.finish(JOB, "w1", "cancelled", error="cancelled")["status"] == "cancelled"
    # a cancelled job whose worker is lost ends cancelled, not re-queued
    book.submit(_spec())
    book.claim(JOB, "w2")
    book.cancel(JOB)
    assert book.release(JOB, "worker died")["status"] == "cancelled"
    assert book.cancel("post-ffffffffffff") is None


def test_records_survive_a_restart_and_corrupt_ones_are_reported(tmp_path: Path,
                                                                 clock: Clock) -> None:
    book = _book(tmp_path, clock)
    book.submit(_spec())
    book.claim(JOB, "w1")
    store = JobStore(tmp_path)
    store.path("post-00000000dead").write_text('{"job_id": "post-0', encoding="utf-8")
    with pytest.raises(CorruptFileError, match="post-00000000dead"):
        store.read("post-00000000dead")
    restarted = _book(tmp_path, clock)
    restarted.load()
    assert restarted.get(JOB)["owner"] == "w1" and restarted.get(JOB)["status"] == "running"
    assert list(restarted.corrupt) == ["post-00000000dead"]
    assert "post-00000000dead.json: corrupt" in restarted.corrupt["post-00000000dead"]
    assert restarted.get("post-00000000dead") is None  # not a job, and not "missing" either:
    # the coordinator answers {"corrupt": why} for it, the API 503; a new request replaces it
    replaced, created = restarted.submit(_spec("post-00000000dead"))
    assert created and restarted.corrupt == {} and store.read("post-00000000dead") == replaced
    clock.now += 31  # nobody renews after the restart: re-queued
    assert [j["status"] for j in restarted.expire()] == ["queued"]
