"""The ``openai`` backend against a real local HTTP server: wire format, retries, failures."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tailormind.config import load_config
from tailormind.errors import ConfigError, ModelError
from tailormind.models import openai_http
from tailormind.models.registry import load_role, unload_all
from tailormind.models.types import GenerationParams


class ScriptedServer:
    """Answers POSTs from a script of (status, body, delay), or, when ``respond`` is set, with
    ``respond(request body)``'s (status, body, delay); records every request body. ``delay``:
    seconds to wait, or a ``threading.Event``: answer only once it is set (at most 60 s), so a
    test can hold an answer back without depending on how long anything takes. ``answered``:
    how many answers the server has started to send."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict | str, float | threading.Event]] = []
        self.respond: Callable[[dict], tuple[int, dict | str, float]] | None = None
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.answered = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length))
                server.requests.append(request)
                server.headers.append(dict(self.headers))
                if server.respond is not None:
                    status, body, delay = server.respond(request)
                else:
                    status, body, delay = (server.script.pop(0) if server.script
                                           else (500, "empty", 0))
                if isinstance(delay, threading.Event):
                    delay.wait(60)
                else:
                    time.sleep(delay)
                server.answered += 1
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def chat_answer(text: str) -> dict:
    return {"model": "served", "choices": [{"message": {"role": "assistant", "content": text},
                                            "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    monkeypatch.setattr(openai_http, "BACKOFF_S", 0.01)
    scripted = ScriptedServer()
    yield scripted
    scripted.httpd.shutdown()
    unload_all()


def role(server: ScriptedServer, name: str, **extra):
    block = {"backend": "openai", "base_url": server.url, "model": "served", "timeout_s": 2,
             "max_retries": 2, **extra}
    return load_role(name, load_config(environ={}, overrides={"models": {"cache": False,
                                                                         name: block}}))


def test_chat_wire_format_and_usage(server: ScriptedServer, monkeypatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sekret")
    server.script = [(200, chat_answer('{"idea": "x"}'), 0)]
    text = role(server, "text", api_key_env="TEST_OPENAI_KEY")
    schema = {"type": "object", "required": ["idea"]}
    [answer] = text.complete_json([[{"role": "user", "content": "hi"}]], schema,
                                  GenerationParams(max_tokens=20, temperature=0.5, stop=("END",),
                                                   seed=4))
    assert answer.value == {"idea": "x"} and answer.prompt_tokens == 7
    body = server.requests[0]
    assert body["model"] == "served" and body["max_tokens"] == 20 and body["stop"] == ["END"]
    assert body["seed"] == 4 and body["temperature"] == 0.5
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert server.headers[0]["Authorization"] == "Bearer sekret"
    assert "continue_final_message" not in body and text.follows_json


def test_a_prefilled_answer_asks_the_server_to_continue_it(server: ScriptedServer) -> None:
    server.script = [(200, chat_answer(" Rivers of Ice"), 0)]
    text = role(server, "text")
    [answer] = text.complete([[{"role": "user", "content": "A title?"},
                               {"role": "assistant", "content": "Title:"}]])
    body = server.requests[0]
    assert answer.text == "Rivers of Ice"
    assert body["messages"][-1] == {"role": "assistant", "content": "Title:"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_retries_500_then_succeeds(server: ScriptedServer) -> None:
    server.script = [(500, {"error": {"message": "overloaded"}}, 0), (503, "busy", 0),
                     (200, chat_answer("fine"), 0)]
    text = role(server, "text")
    assert text.complete([[{"role": "user", "content": "x"}]])[0].text == "fine"
    assert len(server.requests) == 3 and text.client.retries_done == 2


def test_persistent_500_is_one_clear_error(server: ScriptedServer) -> None:
    server.script = [(500, {"error": {"message": "CUDA out of memory"}}, 0)] * 3
    text = role(server, "text")
    with pytest.raises(ModelError, match=r"failed after 3 attempts: HTTP 500: CUDA out of memory"):
        text.complete([[{"role": "user", "content": "x"}]])


def test_timeout_is_retried_then_reported(server: ScriptedServer) -> None:
    """The server holds every answer back until the test lets it go: the client gives up on
    its own 0.3 s read timeout, twice (one retry), before anything was answered. No wall-clock
    bound: a client that ignored the timeout would get the held answer (after 60 s at most)
    and not raise."""
    held = threading.Event()
    server.script = [(200, chat_answer("late"), held)] * 3
    text = role(server, "text", timeout_s=0.3, max_retries=1)
    try:
        with pytest.raises(ModelError, match=r"failed after 2 attempts: timed out after 0.3 s"):
            text.complete([[{"role": "user", "content": "x"}]])
        # both attempts reach the server (its handler threads may still be reading them)
        deadline = time.monotonic() + 30
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.requests) == 2 and server.answered == 0
        assert text.client.retries_done == 1
    finally:
        held.set()


def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    server.script = [(400, {"error": {"message": "max_tokens too large"}}, 0)]
    text = role(server, "text")
    with pytest.raises(ModelError, match=r"answered HTTP 400: max_tokens too large"):
        text.complete([[{"role": "user", "content": "x"}]])
    assert len(server.requests) == 1


def test_concurrent_batch_keeps_order(server: ScriptedServer) -> None:
    """Each answer names its question; earlier questions answer later (q0 slowest), so answers
    arrive out of order, and still come back in the order asked."""

    def respond(request: dict) -> tuple[int, dict, float]:
        question = request["messages"][0]["content"]
        return 200, chat_answer(f"answer to {question}"), 0.02 * (6 - int(question[1:]))

    server.respond = respond
    text = role(server, "text", concurrency=3)
    answers = text.complete([[{"role": "user", "content": f"q{i}"}] for i in range(6)])
    assert [a.text for a in answers] == [f"answer to q{i}" for i in range(6)]
    assert sorted(r["messages"][0]["content"] for r in server.requests) == [f"q{i}"
                                                                            for i in range(6)]


def test_embeddings_sorted_by_index_and_normalised(server: ScriptedServer) -> None:
    server.script = [(200, {"data": [{"index": 1, "embedding": [0.0, 2.0]},
                                     {"index": 0, "embedding": [3.0, 4.0]}]}, 0)]
    embedder = role(server, "embed", options={"dim": 2})
    vectors = embedder.embed(["first", "second"])
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)
    assert server.requests[0]["input"] == ["first", "second"]


def test_describe_sends_images_as_base64_parts(server: ScriptedServer) -> None:
    server.script = [(200, chat_answer("A red square."), 0)]
    describer = role(server, "describe")
    answer = describer.describe([Image.new("RGB", (8, 8), "red")], "Describe it.")
    assert answer.text == "A red square."
    content = server.requests[0]["messages"][0]["content"]
    assert content[-1] == {"type": "text", "text": "Describe it."}
    url = content[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (8, 8) and decoded.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_connection_refused_and_config_errors(monkeypatch) -> None:
    monkeypatch.setattr(openai_http, "BACKOFF_S", 0.01)
    settings = load_config(environ={}, overrides={"models": {"cache": False, "text": {
        "backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 1}}})
    with pytest.raises(ModelError, match=r"127.0.0.1:9/v1/chat/completions failed after 2 "
                                         r"attempts: cannot connect"):
        load_role("text", settings).complete([[{"role": "user", "content": "x"}]])
    with pytest.raises(ConfigError, match=r"models\.text\.base_url"):
        load_role("text", load_config(environ={}, overrides={"models": {"text": {
            "backend": "openai", "model": "m"}}}))
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_KEY is not set"):
        load_role("text", load_config(environ={}, overrides={"models": {"text": {
            "backend": "openai", "model": "m", "base_url": "http://x/v1",
            "api_key_env": "NOT_SET_KEY"}}}))
    unload_all()
