"""Every ``benchmarks/*.py`` script, run once in a tiny mode as a user runs it (a subprocess), so
a benchmark that rots is noticed: each must exit 0 and print its table — the header and at
least one data row with numbers. The sizes are smoke-run sizes and the text model is a tiny
random LM where the script allows it: the numbers mean nothing, the tables must be there.

All slow: each script starts its own Python, torch, and (some) Ray and Ray Serve."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, fresh

pytestmark = pytest.mark.slow

NUMBER = r"[-+]?\d+(?:\.\d+)?"
#: the tiny LM, asked field by field with few tokens (as tests/test_bench_cli.py does)
SMALL_TEXT = {"GENERATION__ANSWER_FORMAT": "fields", "GENERATION__LINE_TOKENS": "8",
              "GENERATION__BODY_TOKENS": "16", "GENERATION__REFLECTION_ROUNDS": "1",
              "PROFILING__N_MAX": "1", "PROFILING__PROFILE_TOKENS": "16",
              "PROFILING__CRITIQUE_TOKENS": "16"}


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("bench-llm") / "llm")


def tiny_env(settings, llm: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a script run: no TAILORMIND_* of the caller, the session's model
    cache, the tiny LM as ``text`` (when given), ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORMIND_")}
    env["TAILORMIND_MODELS__CACHE_DIR"] = str(settings.models.cache_dir)
    env["RAY_AUTH_MODE"] = "disabled"  # the scripts' throw-away local clusters
    if llm is not None:
        env.update({"TAILORMIND_MODELS__TEXT__BACKEND": "transformers",
                    "TAILORMIND_MODELS__TEXT__PATH": str(llm),
                    **{f"TAILORMIND_{k}": v for k, v in SMALL_TEXT.items()}})
    env.update({f"TAILORMIND_{k}": v for k, v in extra.items()})
    return env


def run_script(name: str, *args: str | Path, env: dict[str, str], timeout: float = 840,
               cwd: Path = REPO) -> str:
    """``python benchmarks/NAME ARGS``; its stdout (the table), after checking it exited 0."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout


def row(text: str, pattern: str) -> str:
    """The one line of ``text`` matching ``pattern`` (a regex matched from the line start)."""
    found = [line for line in text.splitlines() if re.match(pattern, line)]
    assert len(found) == 1, (pattern, text[-3000:])
    return found[0]


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(rf"(?<![\w@]){NUMBER}(?![\w@])", line)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cf_benchmark(profiled_ws, tmp_path: Path) -> None:
    _, settings = profiled_ws
    out = run_script("cf.py", "--data", "tiny", "--epochs", "1", "--root", tmp_path,
                     "--methods", "popularity,lightgcn,hypergraph", env=tiny_env(settings))
    assert "CF benchmark: data=tiny" in out and "1:20 candidate sets" in out
    row(out, r"method\s+R@10\s+R@20\s+N@10\s+N@20\s+±N@20\s+vN@20\s+best/ep\s+s/epoch\s+peakRSS$")
    for method in ("popularity", "lightgcn", "hypergraph"):
        values = numbers(row(out, rf"{method}\s+\d"))
        assert len(values) >= 5 and all(0 <= v <= 1 for v in values[:4]), (method, values)
    assert "paired differences (test, 1:20)" in out
    row(out, r"a − b\s+metric\s+diff\s+interval\s+n\s+W/L")
    pair = row(out, r"lightgcn − hypergraph\s+ndcg@20\s")
    assert numbers(pair)[-3] == 60  # n: every test user of the 60


def test_models_benchmark(profiled_ws) -> None:
    _, settings = profiled_ws
    out = run_script("models.py", "--tiny", "--cache-dir", settings.models.cache_dir,
                     env=tiny_env(settings))
    row(out, r"measure\s+before\s+after\s+unit$")
    for measure, unit in [(r"SmolLM2 load, cold \(convert the GGUF \+ save\)", "s"),
                          (r"SmolLM2 load, cached", "s"),
                          (r"SmolLM2 chat template \+ tokenise, one prompt", "ms"),
                          (r"SmolLM2 prefill, \d+-token prompt", "tokens/s"),
                          (r"SmolLM2 decode, batch 1 ", "tokens/s"),
                          (r"SmolLM2 decode, batch 2 ", "tokens/s"),
                          (r"SmolLM2 a draft's 6 field questions over one context", "s")]:
        line = row(out, measure)  # both runtimes measured
        assert re.search(rf"\s{NUMBER}\s+{NUMBER}\s+{re.escape(unit)}$", line), line
    line = row(out, r"SmolLM2 a draft's 6 field questions, share outside llama_decode")
    assert re.search(rf"\s-\s+{NUMBER}\s+%$", line), line
    for measure, unit in [(r"MiniLM embed \(64 movie texts", "texts/s"),
                          (r"cover card render, 270x360", "ms"),
                          (r"slideshow encode, 2 s 128x128 @8 fps \(16 frames\)", "s"),
                          (r"embed 1 text: in-process / Serve HTTP \(median of 1\)", "ms"),
                          (r"embed 1 text: Serve overhead", "ms"),
                          (r"chat, 16 tokens: in-process / Serve HTTP", "ms"),
                          (r"chat, 16 tokens: Serve overhead", "ms")]:
        line = row(out, measure)
        assert re.search(rf"\s-\s+{NUMBER}(?: / {NUMBER})?\s+{re.escape(unit)}$", line), line


def test_generation_benchmark(profiled_ws, tmp_path: Path, tiny_llm: Path) -> None:
    ws = fresh(profiled_ws, tmp_path)  # described, CF top-K; the script profiles its users
    _, settings = profiled_ws
    out = run_script("generation.py", "--workspace", ws.root, "--users", "1",
                     "--video-users", "1", env=tiny_env(settings, tiny_llm))
    assert "## Generation on ws — text llm (configured), embed" in out
    profiling = row(out, r"\| configured \| 1 \| ")
    assert len(numbers(profiling)) >= 3, profiling
    row(out, r"\| runtime \| kind \| posts \| inputs s \| exemplars s \| ideate s \| writing s \| "
             r"images s \| scoring s \| media s \| bundle s \| total s \| LLM tokens")
    row(out, r"\| runtime \| kind \| posts \| relevance round 0 \| relevance kept \| mean gain")
    for kind in ("post", "video"):
        stages, quality = [line for line in out.splitlines()
                           if line.startswith(f"| configured | {kind} | 1 |")]
        assert len(numbers(stages)) >= 11 and len(numbers(quality)) >= 6, (stages, quality)
    assert "fallbacks recorded (configured):" in out


def test_profiling_benchmark_overhead(profiled_ws) -> None:
    _, settings = profiled_ws
    out = run_script("profiling.py", "overhead", "--users", "30", "--items", "60",
                     env=tiny_env(settings))
    users = numbers(row(out, r"users\s"))
    assert 0 < users[0] <= 30  # users with a candidate set among the 30
    for label in (r"wall s\s", r"ms per user \(all\)", r"ms per user in the embedder"):
        (value,) = numbers(row(out, label))
        assert value > 0, (label, value)
    assert len(numbers(row(out, r"ms per user orchestration"))) == 1


def test_profiling_benchmark_describe(profiled_ws, tiny_llm: Path) -> None:
    """A tag-heavy catalogue described before (tags summarised by the text model) and after
    (tags cut, no model): the table's rows, and no model call after."""
    _, settings = profiled_ws
    out = run_script("profiling.py", "describe", "--items", "40", "--max-tags", "300",
                     "--before-items", "2", env=tiny_env(settings, tiny_llm))
    row(out, r"\| describe \| items run \| summarised by the text model \| wall s \|")
    before = numbers(row(out, r"\| before: summarise tag lists"))
    after = numbers(row(out, r"\| after: most informative tags"))
    assert before[0] == 2 and before[1] >= 1  # long tag lists went to the model
    assert after[0] == 40 and after[1] == 0  # none did
    assert all(v > 0 for v in after[2:])


def test_profiling_benchmark_quality(profiled_ws, tmp_path: Path, tiny_llm: Path) -> None:
    ws = fresh(profiled_ws, tmp_path)  # described, HypergraphCF, cf_topk: LightGCN is trained
    _, settings = profiled_ws
    out = run_script("profiling.py", "quality", "--workspace", ws.root, "--users", "2",
                     "--variants", "nocf", "--variant-users", "1", "--llm-ranker-users", "0",
                     env=tiny_env(settings, tiny_llm, CF__EPOCHS="2", CF__EMBEDDING_DIM="8"))
    assert (ws.root / "cf").is_dir() and "[variant nocf:" in out
    tables = out[out.rindex("test metrics on 2 profiled users"):]  # the last evaluation
    header = row(tables, r"[┃│]\s*method\s*[┃│]\s*users\s*[┃│]\s*R@10")
    assert "N@20" in header
    for method in ("popularity", "hypergraph", "lightgcn", r"profile \(refined\)",
                   r"profile \(refined, nocf\)"):
        line = row(tables, rf"[│┃]\s*{method}\s*[│┃]")
        assert len(numbers(line)) >= 5, line


def test_pipeline_scaling_benchmark(profiled_ws, tmp_path: Path, tiny_llm: Path) -> None:
    _, settings = profiled_ws
    env = tiny_env(settings, tiny_llm, CF__EPOCHS="1", CF__EMBEDDING_DIM="8",
                   DATA__NEGATIVES="10", GENERATION__REFLECTION_ROUNDS="0",
                   PROFILING__N_MAX="0")
    out = run_script("pipeline_scaling.py", "--slice-users", "3", "--users", "1",
                     "--workers", "1", "2", "--num-cpus", "2", "--out", tmp_path / "scaling",
                     env=env)
    row(out, r"\| stage \| 1 worker\(s\) s \| 2 worker\(s\) s \| speed-up 2/1 \|$")
    for stage in ("describe", "profile", "generate", "total"):
        line = row(out, rf"\| {stage} \|")
        assert re.fullmatch(rf"\| {stage} \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|", line), line



def test_incremental_benchmark(profiled_ws, tmp_path: Path, tiny_llm: Path) -> None:
    """The replay on the first 40 users, 2 increments: both paths' costs and the paired rows."""
    _, settings = profiled_ws
    env = tiny_env(settings, tiny_llm, CF__EPOCHS="2", CF__EMBEDDING_DIM="8",
                   CF__RESUME_EPOCHS="1", DATA__NEGATIVES="20")
    out = run_script("incremental.py", "--users", "40", "--increments", "2",
                     "--profile-users", "2", "--workdir", tmp_path / "replay", env=env)
    row(out, r"step \| append \| import\+split \| describe \| cf \| profiles \| total s \| "
             r"tokens \| inc/full s \| inc/full tokens$")
    for step in (1, 2):
        cells = row(out, rf"{step} \| {NUMBER} / {NUMBER} \|").split(" | ")
        assert len(cells) == 10 and cells[-2].endswith("%"), cells
        inc, full = numbers(cells[6])
        assert 0 < inc and 0 < full
        assert numbers(cells[7].replace(",", ""))[1] > 0  # the full path profiles again
        line = row(out, rf"{step} \| cf \(all users\) \| \d+ \|")
        assert len(numbers(line)) == 2 + 3 * 4, line  # step, n, then diff [low, high] x 4

@pytest.mark.timeout(1800)
def test_serve_load_benchmark(profiled_ws, tmp_path: Path, tiny_llm: Path) -> None:
    from tailormind.profiling.profiles import profile_users
    from tests.fakes import ProfilingText
    from tests.workspaces import make_profiler

    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    users = sorted(ws.read("candidates", columns=["user_id"]).column("user_id").unique()
                   .to_pylist())[:2]
    profile_users(ws, settings, users=users, profiler=make_profiler(ws, settings, ProfilingText()))
    env = tiny_env(settings, None, GENERATION__ANSWER_FORMAT="fields",
                   GENERATION__LINE_TOKENS="8", GENERATION__BODY_TOKENS="16",
                   GENERATION__REFLECTION_ROUNDS="0", PROFILING__N_MAX="1",
                   PROFILING__PROFILE_TOKENS="16", PROFILING__CRITIQUE_TOKENS="16")
    out = run_script("serve_load.py", "--workspace", ws.root, "--tiny", "--text-model", tiny_llm,
                     "--port", str(free_port()), env=env, timeout=1700)
    assert "service ready after" in out
    row(out, r"\| route \| clients \| requests \| ok \| 503 \| other \| p50 s \| p95 s \| p99 s "
             r"\| ok/min \| 503 p50 ms \|$")
    for route in ("profile", "post"):
        cells = [c.strip() for c in row(out, rf"\| {route} \| 1 \|").strip("|").split("|")]
        assert int(cells[3]) >= 1 and float(cells[6]) > 0, cells  # ok >= 1, a p50 latency
    assert re.search(rf"memory \(PSS of the serve process tree\): {NUMBER} MiB after warm-up",
                     out)
    assert out.rstrip().endswith("(HTTP 4xx/5xx, failed jobs, transport): 0")
    shutil.rmtree(tmp_path / "ws", ignore_errors=True)
