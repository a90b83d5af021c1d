"""The blind rating page end to end: ``tailormind bench rate`` as a real server (a subprocess),
its JSON API over real HTTP (auth, anonymity, bad input), and the page in Debian's Chromium
driven by Playwright (no browser is downloaded): two raters rate with the mouse and the keyboard,
reload and resume, re-rate, and the report's α and ρ come out as computed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.rating_set import anonymous_id
from tailormind.bench.ratings import RatingStore
from tailormind.generation.bundle import POST_JSON
from tailormind.generation.catalog import packaged_catalog
from tests.bench_fixture import ALPHA, HAND, RHO, small_bench
from tests.browser import chromium
from tests.net import free_port, until

TOKEN = "rating-test-token"
HOSTILE = '<img src=x onerror="window.pwned=1">Title & <b>more</b>'


@pytest.fixture(scope="module")
def bench(profiled_ws, tmp_path_factory):
    ws, settings, result = small_bench(profiled_ws, tmp_path_factory.mktemp("rate"))
    # a hostile title in one post: the page must show it as text
    user = sorted(result.report["users"])[1]
    row = next(r for r in result.report["per_post"]
               if r["method"] == "tailormind" and r["user_id"] == user)
    path = ws.root / row["path"] / POST_JSON
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "title": HOSTILE}))
    return ws, settings, result


def _serve(ws, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("tailormind")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORMIND_")}
    env["TAILORMIND_API_TOKEN"] = TOKEN
    return subprocess.Popen([str(exe), "bench", "rate", "--workspace", str(ws.root), "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def server(bench) -> Iterator[str]:
    ws, _, _ = bench
    port = free_port()
    process = _serve(ws, port)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"bench rate exited: {process.stdout.read()}")
        try:
            return httpx.get(base + "/api/rate/").status_code == 200
        except httpx.TransportError:
            return False

    until(up, "the rating server answers", timeout_s=60)
    yield base + "/api/rate/"
    process.terminate()
    process.wait(timeout=30)


@contextmanager
def _session(server: str, rater: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        answer = client.post("session", json={"rater": rater, "token": TOKEN})
        assert answer.status_code == 200, answer.text
        yield client


def _identity(bench) -> dict[str, tuple[str, int]]:
    """anonymised id -> (method, user index), as the test (not the page) can work it out."""
    ws, _, result = bench
    secret = RatingStore.of(ws.root / BENCH_DIR).secret()
    users = sorted(result.report["users"])
    return {anonymous_id(secret, method, users[n]): (method, n) for method, n in HAND}


def test_every_data_route_needs_a_session(server, bench) -> None:
    item = next(iter(_identity(bench)))
    routes = [("GET", "queue"), ("GET", f"items/{item}"), ("GET", f"items/{item}/media/0"),
              ("PUT", f"ratings/{item}")]
    ws, _, _ = bench
    other_key_cookie = "YW5u.1700000000.00"  # well-formed, wrong signature
    with httpx.Client(base_url=server) as client:
        for method, path in routes:
            for cookies in ({}, {"tailormind_rater": other_key_cookie},
                            {"tailormind_rater": "garbage"}):
                client.cookies.clear()
                answer = client.request(method, path, json={}, cookies=cookies)
                assert answer.status_code == 401, (method, path, cookies, answer.text)
                assert answer.json()["error"]["code"] == "no_session"
        # a bearer token is not a rater: the data routes still want a session
        answer = client.get("queue", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 401
        wrong = client.post("session", json={"rater": "ann", "token": "nope"})
        assert wrong.status_code == 401 and "tailormind_rater" not in wrong.cookies
        bad = client.post("session", json={"rater": "<script>", "token": TOKEN})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_rater"
        form = client.post("session", content="rater=ann", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415  # a cross-site form never reaches the route
    page = httpx.get(server)
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.split("<body", 1)[0].replace('"http-equiv', "")  # no CDN


def test_the_queue_is_anonymous_seeded_per_rater_and_complete(server, bench) -> None:
    identity = _identity(bench)
    ws, _, result = bench
    users = result.report["users"]
    orders = {}
    for rater in ("carol", "dave", "erin"):
        with _session(server, rater) as client:
            queue = client.get("queue").json()
            orders[rater] = [i["item_id"] for i in queue["items"]]
            assert sorted(orders[rater]) == sorted(identity) and queue["total"] == 4
            assert client.get("queue").json()["items"] == queue["items"]  # stable per rater
            for item in orders[rater]:
                shown = client.get(f"items/{item}").text
                for secret in ("tailormind", "ground_truth", "TailorMind", *users,
                               str(ws.root), "generations"):
                    assert secret not in shown, (secret, shown[:200])
    assert len({tuple(o) for o in orders.values()}) > 1  # raters see different orders


def test_bad_ratings_are_refused_and_nothing_is_stored(server, bench) -> None:
    item = next(iter(_identity(bench)))
    with _session(server, "frank") as client:
        for body, field in [({"novelty": 6, "aesthetic": 3, "hallucination": 0}, "novelty"),
                            ({"novelty": 3, "aesthetic": "4", "hallucination": 0}, "aesthetic"),
                            ({"novelty": 3, "aesthetic": 4, "hallucination": True},
                             "hallucination"),
                            ({"novelty": 3, "aesthetic": 4}, "hallucination"),
                            ({"novelty": 3, "aesthetic": 4, "hallucination": 0,
                              "comment": "x" * 2001}, "comment")]:
            answer = client.put(f"ratings/{item}", json=body)
            assert answer.status_code == 422, body
            assert field in answer.json()["error"]["message"]
        assert client.put("ratings/i000000000000", json={
            "novelty": 3, "aesthetic": 3, "hallucination": 0}).status_code == 404
        assert client.get(f"items/{item}/media/99").status_code == 404
    ws, _, _ = bench
    assert RatingStore.of(ws.root / BENCH_DIR).ratings("frank") == []


def _rgb(hex_colour: str) -> str:
    """``#ff2442`` -> ``rgb(255, 36, 66)``, as the browser computes it."""
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def _rate_with_mouse(page, scores: tuple[int, int, int]) -> None:
    for scale, value in zip(("novelty", "aesthetic", "hallucination"), scores, strict=True):
        page.click(f'button.score[data-scale="{scale}"][data-value="{value}"]')
    page.click("#save")


def _rate_with_keys(page, scores: tuple[int, int, int]) -> None:
    novelty, aesthetic, hallucination = scores
    page.keyboard.press(str(novelty))
    page.keyboard.press(str(aesthetic))
    page.keyboard.press("y" if hallucination else "n")
    page.keyboard.press("Enter")


def _shown(page) -> str:
    return page.get_attribute("#post", "data-item-id")


def _wait_progress(page, done: int) -> None:
    page.wait_for_function(f"() => document.getElementById('progress-text').textContent"
                           f".startsWith('{done} of 4 rated')")


def _go_to(page, item: str) -> None:
    """Press ArrowLeft or ArrowRight, waiting for each step, until ``item`` is shown (the
    queue's order is the rater's own, seeded: any post may be first)."""
    order = page.evaluate("() => state.queue.items.map((entry) => entry.item_id)")
    path = [_shown(page)]
    while path[-1] != item:
        key = "ArrowRight" if order.index(item) > order.index(path[-1]) else "ArrowLeft"
        page.keyboard.press(key)
        page.wait_for_function(f"() => document.getElementById('post').dataset.itemId "
                               f"!== '{path[-1]}'", timeout=10000)
        path.append(_shown(page))
        assert len(path) <= len(order), f"went {path}, never to {item}"


def _rate_all(page, identity, rater: str, first_wrong: bool = False) -> list[str]:
    """Rate every post as ``rater`` with HAND's scores, alternating mouse and keyboard; with
    ``first_wrong`` the first post gets other scores first and is re-rated at the end; reload
    after the second post. The item ids in the order they were shown."""
    seen = []
    for n in range(4):
        page.wait_for_function("() => document.getElementById('post').dataset.itemId")
        item = _shown(page)
        seen.append(item)
        scores = HAND[identity[item]][rater]
        if first_wrong and n == 0:
            scores = (1, 1, 1 - scores[2])
        (_rate_with_mouse if n % 2 == 0 else _rate_with_keys)(page, scores)
        _wait_progress(page, n + 1)
        if n < 3:
            page.wait_for_function(
                f"() => document.getElementById('post').dataset.itemId !== '{item}'")
        if n == 1:  # a reload resumes at the first post not rated yet
            page.reload()
            _wait_progress(page, 2)
            assert _shown(page) not in seen
    assert page.is_visible("#finished")
    if first_wrong:  # go back to the first post and re-rate it: the new rating replaces it
        _go_to(page, seen[0])
        assert page.get_attribute('button.score[data-scale="novelty"][data-value="1"]',
                                  "aria-pressed") == "true"  # the stored rating, shown
        _rate_with_keys(page, HAND[identity[seen[0]]][rater])
        page.wait_for_function(
            "() => document.getElementById('status').textContent === 'Saved.'")
    return seen


@contextmanager
def _chromium_page(server: str) -> Iterator:
    """A page of Debian's Chromium (through Playwright, nothing downloaded) opened on ``server``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.goto(server)
            yield page
        finally:
            browser.close()


def test_two_raters_in_chromium_then_the_report(server, bench, cli) -> None:
    identity = _identity(bench)
    ws, _, result = bench
    with _chromium_page(server) as page:
        page.wait_for_selector("#login:not([hidden])")
        assert page.is_visible("#token-row")
        page.fill("#rater", "ann")
        page.fill("#token", "wrong")
        page.click("#start")
        page.wait_for_function("() => document.getElementById('login-error').textContent")
        assert "wrong access token" in page.text_content("#login-error")
        page.fill("#token", TOKEN)
        page.click("#start")
        page.wait_for_selector("#rating:not([hidden])")
        assert page.text_content("#who") == "Rating as ann"
        platform = packaged_catalog().platform(
            result.report["config"]["generation"]["platform"])
        assert page.text_content("#platform") == platform.title  # shown as on its platform
        assert page.evaluate("() => getComputedStyle(document.getElementById('platform'))"
                             ".backgroundColor") == _rgb(platform.theme.accent)
        seen_ann = _rate_all(page, identity, "ann", first_wrong=True)
        # the hostile title is text, and its script never ran
        hostile = next(i for i in seen_ann if identity[i] == ("tailormind", 1))
        _go_to(page, hostile)
        assert page.text_content("#post-title") == HOSTILE
        assert page.evaluate("() => window.pwned") is None
        assert page.evaluate(
            "() => document.querySelectorAll('#post b, #post-title img').length") == 0
        page.click("#logout")
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#rater", "bob")
        page.fill("#token", TOKEN)
        page.click("#start")
        page.wait_for_selector("#rating:not([hidden])")
        _wait_progress(page, 0)
        _rate_all(page, identity, "bob")
    ratings = RatingStore.of(ws.root / BENCH_DIR).ratings()
    mine = [r for r in ratings if r.rater in ("ann", "bob")]
    assert len(mine) == 8
    for r in mine:
        n = sorted(result.report["users"]).index(r.user_id)
        assert (r.novelty, r.aesthetic, r.hallucination) == HAND[(r.method, n)][r.rater]
        assert r.revisions == (2 if r.rater == "ann" and r.item_id == seen_ann[0] else 1)
    done = cli("bench", "report", "--workspace", ws.root, "--json")
    assert done.code == 0, done.err
    section = json.loads(done.out)["human"]
    if set(section["raters"]) != {"ann", "bob"}:  # the HTTP tests' raters left nothing behind
        pytest.fail(f"unexpected raters {section['raters']}")
    for name, dim in section["dimensions"].items():
        assert dim["alpha"]["value"] == pytest.approx(ALPHA[name], abs=1e-6), name
        assert dim["judge"]["rho"] == pytest.approx(RHO[name], abs=1e-6), name


def test_fast_arrows_land_where_they_point_even_when_answers_come_late(server) -> None:
    """Three quick ArrowRight presses end on the fourth post, even when the second post's answer
    comes back last: a late answer never replaces the post the rater moved on to."""
    import time

    with _chromium_page(server) as page:
        page.fill("#rater", "dora")
        page.fill("#token", TOKEN)
        page.click("#start")
        page.wait_for_selector("#rating:not([hidden])")
        page.wait_for_function("() => document.body.dataset.itemIndex === '0'")
        order = page.evaluate("() => state.queue.items.map((entry) => entry.item_id)")

        def late(route) -> None:  # the browser's other requests go on meanwhile
            time.sleep(1.5)
            route.continue_()

        page.route(f"**/items/{order[1]}", late)
        page.evaluate("() => { for (let n = 0; n < 3; n++) document.dispatchEvent("
                      "new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true})); }")
        page.wait_for_timeout(2500)  # the late answer has arrived by now
        page.wait_for_function("() => document.body.dataset.itemIndex === '3'")
        assert _shown(page) == order[3]
        assert page.evaluate("() => [state.index, state.item.item_id]") == [3, order[3]]
        assert "post 4 of 4" in page.text_content("#progress-text")
