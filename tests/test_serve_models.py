"""The model deployments on a real local Ray Serve, called over real HTTP with the official
``openai`` client, through TailorMind's ``openai`` backend, and through the ``serve`` backend."""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tailormind.config import load_config
from tailormind.errors import ModelError
from tailormind.models.media import probe_video
from tailormind.models.registry import load_role, unload_all
from tailormind.models.types import ImageRequest, Shot, Storyboard
from tests.net import free_port

API_KEY = "test-models-key"
TEXT, EMBED = "smollm2-135m-instruct", "all-minilm-l6-v2"



@pytest.fixture(scope="module")
def served(models_cache: Path):
    import ray
    from ray import serve

    from tailormind.serve.model_app import build_app

    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    port = free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TM_TEST_MODELS_KEY": API_KEY}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({"models": {"cache_dir": str(models_cache)},
                         "roles": ["text", "embed", "image", "video"],
                         "api_key_env": "TM_TEST_MODELS_KEY"}),
              name="tailormind-models", route_prefix="/models")
    yield f"http://127.0.0.1:{port}/models/v1"
    unload_all()
    serve.shutdown()
    ray.shutdown()


@pytest.fixture
def client(served: str):
    from openai import OpenAI

    return OpenAI(base_url=served, api_key=API_KEY, max_retries=0, timeout=120)


def test_official_client_models_chat_embeddings(client) -> None:
    assert sorted(m.id for m in client.models.list().data) == sorted([TEXT, EMBED])
    chat = client.chat.completions.create(
        model=TEXT, messages=[{"role": "system", "content": "You are brief."},
                              {"role": "user", "content": "Name one planet."}],
        max_tokens=16, temperature=0)
    assert chat.choices[0].message.content and chat.choices[0].finish_reason in ("stop", "length")
    assert chat.usage.completion_tokens > 0 and chat.model == TEXT
    # the client asks for base64 by default; both encodings decode to the same unit vectors
    packed = client.embeddings.create(model=EMBED, input=["a cat on a mat", "a kitten on a rug",
                                                          "bond yields rose"])
    floats = client.embeddings.create(model=EMBED, input=["a cat on a mat"],
                                      encoding_format="float")
    vectors = np.array([d.embedding for d in packed.data])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(floats.data[0].embedding, vectors[0], atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def _chat_batch_sizes() -> Counter:
    """{batch size: batches} that ``TextModel.chat`` (``@serve.batch``) has been called with."""
    from ray import serve

    handle = serve.get_deployment_handle("TextModel", app_name="tailormind-models")
    return Counter(handle.info.remote().result(timeout_s=120)["batch_sizes"].get("chat", {}))


def test_concurrent_chats_are_served_in_shared_batches(client) -> None:
    """Six chats sent at once reach ``TextModel.chat`` as batches holding all six, at least one
    with more than one request (the replica runs one batch at a time, so requests arriving
    while a batch runs wait for the next one), and every answer is its own request's: its
    prompt token count is the one the same prompt gets when asked alone."""
    prompts = ["Repeat after me:" + " echo" * (3 * n + 1) for n in range(6)]

    def ask(prompt: str, max_tokens: int):
        return client.chat.completions.create(
            model=TEXT, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens)

    alone = [ask(p, 1).usage.prompt_tokens for p in prompts]  # one at a time: the reference
    assert len(set(alone)) == 6  # each prompt is told apart by its length
    before = _chat_batch_sizes()
    start = threading.Barrier(6)

    def at_once(prompt: str):
        start.wait()
        return ask(prompt, 8)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(at_once, prompts))
    batches = _chat_batch_sizes() - before
    assert sum(size * count for size, count in batches.items()) == 6, batches
    assert max(batches, default=0) > 1, batches  # served together, not one by one
    assert [a.usage.prompt_tokens for a in answers] == alone
    assert all(a.choices[0].message.content and a.model == TEXT for a in answers)


def test_a_served_batch_reaches_the_model_as_one_call_per_params() -> None:
    """What ``@serve.batch`` hands ``TextModel.chat`` (the test above shows it hands over
    several requests at once) goes to the model as one forward batch per (params, schema):
    six requests, q2 and q5 with their own params, make two model calls, and every answer goes
    back to its own request. Called in-process on the undecorated method (no Serve needed)."""
    import asyncio
    from collections import defaultdict

    from tailormind.serve.heap_trim import HeapTrimmer
    from tailormind.serve.model_deployments import TextDeployment
    from tests.fakes import ScriptedText

    recording = ScriptedText({None: lambda call: f"answer to {call.prompt}"},
                             model_id="recording", follows_json=False)
    host_class = TextDeployment.func_or_class
    host = host_class.__new__(host_class)  # no role loading: the recording model instead
    host.role, host._lock, host._trim = recording, asyncio.Lock(), HeapTrimmer()
    host.batch_sizes = defaultdict(Counter)
    requests = [([{"role": "user", "content": f"q{i}"}],
                 {"max_tokens": 7} if i in (2, 5) else None, None) for i in range(6)]
    answers = asyncio.run(host_class.chat.__wrapped__(host, requests))
    assert [a["text"] for a in answers] == [f"answer to q{i}" for i in range(6)]
    default = host.role.default_params.max_tokens
    assert default != 7
    assert [([c.prompt for c in batch], batch[0].params.max_tokens)
            for batch in recording.batches] == [(["q0", "q1", "q3", "q4"], default),
                                                (["q2", "q5"], 7)]
    assert host.batch_sizes == {"chat": Counter({6: 1})}


def test_http_errors(served: str, client) -> None:
    import openai

    with pytest.raises(openai.NotFoundError, match="model 'gpt-4' is not served here"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="stream=true is not supported"):
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "x"}],
                                       stream=True)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    missing = httpx.post(f"{served}/chat/completions", json={"model": TEXT}, headers=headers)
    assert missing.status_code == 422 and "messages" in missing.json()["error"]["message"]
    assert httpx.get(f"{served}/models").status_code == 401
    assert httpx.get(f"{served}/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(served.removesuffix("/v1") + "/healthz").json() == {"status": "ok"}


def test_tailormind_openai_backend_against_the_deployment(served: str, monkeypatch) -> None:
    monkeypatch.setenv("TM_TEST_CLIENT_KEY", API_KEY)
    common = {"backend": "openai", "base_url": served, "api_key_env": "TM_TEST_CLIENT_KEY"}
    settings = load_config(environ={}, overrides={"models": {
        "cache": False, "text": {**common, "model": TEXT, "max_tokens": 12},
        "embed": {**common, "model": EMBED}}})
    text = load_role("text", settings)
    [answer] = text.complete([[{"role": "user", "content": "Say hi."}]])
    assert answer.text and answer.completion_tokens > 0
    vectors = load_role("embed", settings).embed(["one", "two"])
    assert vectors.shape == (2, 384)


def test_serve_backend_uses_deployment_handles(served: str, tmp_path: Path) -> None:
    settings = load_config(environ={}, overrides={"models": {
        "cache": False, **{role: {"backend": "serve"} for role in
                           ("text", "embed", "image", "video")}}})
    text = load_role("text", settings)
    [answer] = text.complete([[{"role": "user", "content": "Say hi."}]])
    assert answer.text and "SmolLM2" in answer.model
    embedder = load_role("embed", settings)
    assert embedder.dim == 384 and embedder.embed(["x"]).shape == (1, 384)
    image = load_role("image", settings).generate(ImageRequest(prompt="Hello", width=96, height=64))
    assert image.kind == "card" and image.image.size == (96, 64)
    video = load_role("video", settings).render(
        Storyboard(shots=(Shot("one", 0.5, "cap"), Shot("two", 0.5)), width=96, height=64, fps=8),
        tmp_path / "v.mp4")
    info = probe_video(video.path)
    assert info.codec == "h264" and info.frames == 8 and video.kind == "slideshow"


def test_serve_backend_names_a_missing_deployment(served: str) -> None:
    settings = load_config(environ={}, overrides={"models": {"describe": {"backend": "serve"}}})
    with pytest.raises(ModelError, match=r"models\.describe: no Serve deployment 'Describer' in "
                                         r"app 'tailormind-models'"):
        load_role("describe", settings)
