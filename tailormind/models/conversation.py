"""Chat conversations as the ``text`` role takes them: the shape check, the cache-key form, and
the re-ask after an answer that is not valid JSON."""

from __future__ import annotations

from typing import Any

from tailormind.errors import ModelInputError
from tailormind.models.images import image_digest
from tailormind.models.types import Conversation

#: The reason an answer failed, quoted back to the model, is cut to this many characters.
RETRY_ERROR_CHARS = 400


def check_conversation(conversation: Conversation) -> None:
    """Raise :class:`ModelInputError` unless every message has a known role and content."""
    if not conversation:
        raise ModelInputError("a conversation needs at least one message")
    for message in conversation:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ModelInputError(f"a message needs 'role' and 'content', got {message!r:.120}")
        if message["role"] not in ("system", "user", "assistant"):
            raise ModelInputError(f"unknown message role {message['role']!r}")


def message_key(conversation: Conversation) -> list[Any]:
    """JSON-able form of a conversation for the cache key (images by content hash)."""
    out = []
    for message in conversation:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image", "sha256": image_digest(part["image"])}
                if part.get("type") == "image" else part
                for part in content
            ]
        out.append({"role": message["role"], "content": content})
    return out


def retry_message(error: str, schema: dict) -> str:
    """The re-ask after an unusable answer. ``error`` can carry the answer's own text (which may
    echo quoted UGC), so it is quoted too."""
    from tailormind.prompts import render
    from tailormind.prompts.ugc import quote_ugc

    return render("json_retry.txt", error=quote_ugc(error, label="error", limit=RETRY_ERROR_CHARS),
                  schema=schema)


def text_messages(conversation: Conversation) -> list[dict[str, str]]:
    """Messages with text content only (list content joined); images are an input error."""
    out = []
    for message in conversation:
        content = message["content"]
        if isinstance(content, list):
            if any(part.get("type") != "text" for part in content):
                raise ModelInputError("the text role takes text only; send images to 'describe'")
            content = "\n".join(part["text"] for part in content)
        out.append({"role": message["role"], "content": content})
    return out


def json_prefix(schema: dict | None) -> str:
    """The answer's pre-filled start when JSON is asked for: ``{`` or ``[``."""
    if not schema:
        return ""
    return {"object": "{", "array": "["}.get(schema.get("type", ""), "")


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` cut before its first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
