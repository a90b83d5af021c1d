"""Batch generation (plan, resume, failures recorded), the ``generations`` table and the
gallery — rendered in headless Chromium: every post shown, no broken image, and the check fails
on a deleted cover or a post the gallery does not list."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from tailormind.generation.batch import (
    GENERATIONS_TABLE,
    generate_users,
    index_generations,
    plan_generations,
)
from tailormind.generation.bundle import GENERATIONS, local_references
from tailormind.generation.gallery import write_gallery
from tailormind.generation.pipeline import Generator
from tailormind.profiling.evidence import load_evidence
from tests.browser import dump_dom, gallery_problems, screenshot
from tests.conftest import fresh, job_module, tiny_text_env
from tests.fakes import FieldWriter, ScriptedWriter
from tests.workspaces import roles_with


@pytest.fixture(scope="module")
def batch_ws(generated_base, tmp_path_factory):
    """Three users, a post and a video each, through the batch path (scripted field writer)."""
    ws, settings = generated_base
    ws = fresh((ws.root, settings), tmp_path_factory.mktemp("batch"))
    users = sorted(ws.read("profiles").column("user_id").to_pylist())[:3]
    plan = plan_generations(ws, settings, users=users, kinds=["post", "video"])
    generator = Generator(ws, settings, roles=roles_with(settings, FieldWriter()))
    ticks: list[int] = []
    report = generate_users(ws, settings, plan, generator=generator, progress=ticks.append)
    return ws, settings, users, report, ticks


def test_batch_makes_every_post_then_resumes_without_redoing(batch_ws) -> None:
    ws, settings, users, report, ticks = batch_ws
    assert report.wanted == 6 and report.generated == 6 and report.complete
    assert not report.failed and sum(ticks) == 6 and report.llm_tokens > 0
    table = ws.read(GENERATIONS_TABLE)
    assert table.num_rows == 6
    assert sorted(zip(table.column("user_id").to_pylist(), table.column("kind").to_pylist(),
                      strict=True)) == sorted((u, k) for u in users for k in ("post", "video"))
    again = plan_generations(ws, settings, users=users, kinds=["post", "video"])
    assert again.todo == [] and again.report.skipped_done == 6
    forced = plan_generations(ws, settings, users=users[:1], kinds=["post"], force=True)
    assert len(forced.todo) == 1
    # the same settings with the call cache off (an operational knob) still find the bundles
    uncached = settings.model_copy(update={"models": settings.models.model_copy(
        update={"cache": False})})
    assert plan_generations(ws, uncached, users=users, kinds=["post", "video"]).todo == []


def test_one_users_failure_is_recorded_and_the_rest_go_on(batch_ws, tmp_path) -> None:
    ws, settings, users, _, _ = batch_ws
    ws = fresh((ws.root, settings), tmp_path)
    shutil.rmtree(ws.root / GENERATIONS)
    # user 0's profile is gone from the generator: it raises a WorkspaceError for them only
    plan = plan_generations(ws, settings, users=users[:2], kinds=["post"])
    generator = Generator(ws, settings, roles=roles_with(settings, FieldWriter()))
    del generator.profiles[users[0]]
    report = generate_users(ws, settings, plan, generator=generator)
    assert report.generated == 1 and list(report.failed) == [f"{users[0]}/post"]
    assert "has no profile" in report.failed[f"{users[0]}/post"] and not report.complete
    assert ws.read(GENERATIONS_TABLE).num_rows == 1


def test_unknown_users_and_kinds_are_clear_errors(batch_ws) -> None:
    from tailormind.errors import ConfigError, WorkspaceError

    ws, settings, users, _, _ = batch_ws
    with pytest.raises(WorkspaceError, match="have no profile .first: 'ghost'"):
        plan_generations(ws, settings, users=["ghost"])
    with pytest.raises(ConfigError, match="unknown kind 'podcast'"):
        plan_generations(ws, settings, users=users, kinds=["podcast"])


class _Entries(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict] = []
        self._in_li = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("class") == "entry":
            self.entries.append({"post": attrs["data-post-id"], "user": attrs["data-user-id"],
                                 "history": []})
        self._in_li = tag == "li" and bool(self.entries)

    def handle_endtag(self, tag):
        if tag == "li":
            self._in_li = False

    def handle_data(self, data):
        if self._in_li and data.strip():  # an item's title (its tags follow in a <span>)
            self.entries[-1]["history"].append(data.strip())
            self._in_li = False


def test_gallery_shows_every_post_beside_the_users_history(batch_ws) -> None:
    ws, settings, users, _, _ = batch_ws
    page = write_gallery(ws, history_items=4)
    html = page.read_text(encoding="utf-8")
    parser = _Entries()
    parser.feed(html)
    table = ws.read(GENERATIONS_TABLE)
    assert sorted(e["post"] for e in parser.entries) == sorted(table.column("post_id").to_pylist())
    titles = {r["item_id"]: r["title"] for r in ws.read("items").to_pylist()}
    evidence = load_evidence(ws, users, use_cf=False)
    for entry in parser.entries:  # the last 4 train items, newest first
        expected = [titles[i] for i in evidence[entry["user"]].history[-4:][::-1]]
        assert entry["history"] == expected
    for ref in local_references(html):
        assert (page.parent / ref).resolve().is_relative_to((ws.root / GENERATIONS).resolve())
        assert (page.parent / ref).is_file(), ref


def test_an_unreadable_bundle_is_left_out_and_named(batch_ws, tmp_path) -> None:
    ws, settings, users, _, _ = batch_ws
    ws = fresh((ws.root, settings), tmp_path)
    bundles = sorted((ws.root / GENERATIONS).glob("*/*/post.json"))
    bundles[0].write_text("{not json", encoding="utf-8")
    bundles[1].write_text('{"post_id": "x"}', encoding="utf-8")  # parses, lacks the keys
    unreadable: list[str] = []
    table = index_generations(ws, unreadable)
    assert table.num_rows == len(bundles) - 2
    assert unreadable == [str(b.relative_to(ws.root)) for b in bundles[:2]]
    assert ws.manifest["tables"][GENERATIONS_TABLE]["unreadable"] == 2
    page = write_gallery(ws).read_text(encoding="utf-8")
    assert "2 bundle(s) left out" in page and unreadable[0] in page


def test_gallery_renders_in_headless_chromium(batch_ws, tmp_path) -> None:
    ws, settings, users, _, _ = batch_ws
    page = write_gallery(ws)
    expected = set(ws.read(GENERATIONS_TABLE).column("post_id").to_pylist())
    dom = dump_dom(page, tmp_path / "profile")
    assert gallery_problems(dom, expected) == []
    assert re.search(r'data-images-shown="6"', dom)
    shot = screenshot(page, tmp_path / "gallery.png", tmp_path / "profile", (1280, 1600))
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert image.shape == (1600, 1280, 3)
    # not a blank page: the header band is dark, covers and text make the rest vary
    assert image[:40].mean() < 80 and image.std() > 20
    cover = image[120:300, 40:260]  # the first entry's cover, a rendered card
    assert cover.std() > 5, "the first cover rendered as a flat box"


def test_browser_check_fails_on_a_broken_image_or_a_missing_post(batch_ws, tmp_path) -> None:
    ws, settings, users, _, _ = batch_ws
    ws = fresh((ws.root, settings), tmp_path / "ws")
    expected = set(index_generations(ws).column("post_id").to_pylist())
    page = write_gallery(ws)
    cover = next((ws.root / GENERATIONS).glob("*/*/cover.png"))
    cover.unlink()
    dom = dump_dom(page, tmp_path / "profile")
    problems = gallery_problems(dom, expected)
    assert problems[0].startswith("1 broken image(s)")
    assert problems[1:] == ["only 5 image(s) shown for 6 posts"]
    assert cover.parent.name in problems[0]
    # a post made after the gallery was written is missing from it
    extra = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter())).generate(
        users[0], platform="hupu")
    problems = gallery_problems(dom, expected | {extra.post_id})
    assert f"post {extra.post_id} is not in the gallery" in problems


def test_ray_data_generate_job_resumes(batch_ws, tmp_path, monkeypatch, capsys,
                                      local_ray) -> None:
    """jobs/generate_posts.py on 2 Ray Data actors with a tiny random LM asked field by field:
    every post bundled, the table and gallery written; a second run skips them all."""
    import json

    ws, settings, users, _, _ = batch_ws
    ws = fresh((ws.root, settings), tmp_path / "ws")
    shutil.rmtree(ws.root / GENERATIONS)
    tiny_text_env(monkeypatch, settings, tmp_path / "llm", GENERATION__ANSWER_FORMAT="fields",
                  GENERATION__LINE_TOKENS="8", GENERATION__BODY_TOKENS="16")
    job = job_module("generate_posts")
    args = ["--workspace", str(ws.root), "--workers", "2", "--cpus-per-worker", "0.5",
            "--user", users[0], "--user", users[1], "--kind", "post", "--kind", "video"]
    code = job.main(args)
    text = capsys.readouterr().out
    assert code == 0, text[-2000:]
    assert "generate: 4 posts to do" in text
    first = json.loads(text[text.index("{\n"):])["generation"]
    code = job.main(args)
    text = capsys.readouterr().out
    assert code == 0 and "generate: 0 posts to do" in text
    second = json.loads(text[text.index("{\n"):])["generation"]
    assert first["generated"] == 4 and first["complete"] and not first["failed"]
    assert second["generated"] == 0 and second["skipped_done"] == 4
    table = ws.read(GENERATIONS_TABLE)
    assert sorted(table.column("kind").to_pylist()) == ["post", "post", "video", "video"]
    assert set(table.column("ideas_format").to_pylist()) == {"fields"}
    assert (ws.root / GENERATIONS / "index.html").is_file()


def test_generate_and_gallery_commands(batch_ws, tmp_path, monkeypatch, cli) -> None:
    """Through the CLI with a tiny random LM asked field by field: a batch for two users, a
    re-run that skips both, the gallery command, and each bad choice of users or kind."""
    ws, settings, users, _, _ = batch_ws
    ws = fresh((ws.root, settings), tmp_path / "ws")
    shutil.rmtree(ws.root / GENERATIONS)
    tiny_text_env(monkeypatch, settings, tmp_path / "llm", GENERATION__ANSWER_FORMAT="fields",
                  GENERATION__LINE_TOKENS="8", GENERATION__BODY_TOKENS="16",
                  GENERATION__REFLECTION_ROUNDS="0")
    args = ("generate", "-w", ws.root, "--user", users[0], "--user", users[1], "--kind", "post")
    first = cli(*args)
    assert first.code == 0, first.err
    assert "gallery:" in first.out and (ws.root / GENERATIONS / "index.html").is_file()
    assert ws.read(GENERATIONS_TABLE).num_rows == 2
    again = cli(*args, "--json")
    report = __import__("json").loads(again.out)
    assert again.code == 0 and report["skipped_done"] == 2 and report["generated"] == 0
    shown = cli("gallery", "-w", ws.root)
    assert shown.code == 0 and "gallery of 2 post(s)" in shown.out
    for bad, message in [((), "choose the users"),
                         (("--users", "2", "--user", users[0]), "choose the users"),
                         (("--users", "2", "--kind", "podcast"), "unknown kind 'podcast'"),
                         (("--users", "2", "--seed", "3"), "--seed is for one user"),
                         (("--user", "ghost", "--user", users[0]), "have no profile")]:
        result = cli("generate", "-w", ws.root, *bad)
        assert result.code == 2 and message in result.err, (bad, result.err)
