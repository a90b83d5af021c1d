"""Headless Chromium (Debian's ``chromium``) for the gallery test: the DOM after load, and a
screenshot. Without the browser the test skips — unless ``CI_REQUIRE_BROWSER=1`` (set by
``.ci/run``, whose ``make setup`` installs it), where a missing browser is a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium not found (Debian: apt-get install chromium)"
    if os.environ.get("CI_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; CI_REQUIRE_BROWSER=1 requires it")
    pytest.skip(message)


def _run(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--allow-file-access-from-files",
               f"--user-data-dir={profile}", "--virtual-time-budget=5000",
               "--hide-scrollbars", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its load event (scripts run)."""
    return _run("--dump-dom", page.resolve().as_uri(), profile=profile).stdout


def screenshot(page: Path, target: Path, profile: Path, size: tuple[int, int]) -> Path:
    _run(f"--screenshot={target}", f"--window-size={size[0]},{size[1]}",
         page.resolve().as_uri(), profile=profile)
    assert target.is_file(), "chromium wrote no screenshot"
    return target


def gallery_problems(dom: str, expected_posts: set[str]) -> list[str]:
    """What is wrong with a rendered gallery: missing or unexpected posts, broken images, a page
    whose check script did not run."""
    problems = []
    shown = re.search(r'data-images-shown="(\d+)"', dom)
    broken = re.search(r'data-images-broken="(\d+)"', dom)
    if not shown or not broken:
        return ["the page's image check did not run (no data-images-* on body)"]
    posts = set(re.findall(r'<section class="entry" data-post-id="([^"]+)"', dom))
    problems += [f"post {p} is not in the gallery" for p in sorted(expected_posts - posts)]
    problems += [f"unexpected post {p}" for p in sorted(posts - expected_posts)]
    if int(broken.group(1)):
        missing = re.findall(r'class="media-missing">missing image: ([^<]+)<', dom)
        problems.append(f"{broken.group(1)} broken image(s): {', '.join(missing)}")
    if int(shown.group(1)) < len(expected_posts):
        problems.append(f"only {shown.group(1)} image(s) shown for {len(expected_posts)} posts")
    return problems
