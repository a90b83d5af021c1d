"""Rater sessions of the rating page: a signed cookie naming the rater.

Cookie value: ``base64url(rater).issued.signature`` with signature = HMAC-SHA256(key,
rater ‖ issued) and key = HMAC-SHA256(ratings store secret, token or ""). Only a server that
holds the workspace's ratings store can sign one, and changing the API token ends every session.
A session lasts :data:`MAX_AGE_S` (30 days: a rater comes back another day).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

COOKIE = "tailormind_rater"
MAX_AGE_S = 30 * 24 * 3600


def session_key(secret: str, token: str | None) -> bytes:
    return hmac.new(secret.encode(), b"rater-session\x00" + (token or "").encode(),
                    hashlib.sha256).digest()


def _signature(key: bytes, rater: str, issued: int) -> str:
    return hmac.new(key, f"{rater}\x00{issued}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, rater: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    name = base64.urlsafe_b64encode(rater.encode()).decode().rstrip("=")
    return f"{name}.{issued}.{_signature(key, rater, issued)}"


def verify(key: bytes, value: str | None, now: float | None = None) -> str | None:
    """The rater named by a valid, unexpired cookie value; None otherwise."""
    parts = (value or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    try:
        rater = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    issued = int(parts[1])
    age = (time.time() if now is None else now) - issued
    if not 0 <= age <= MAX_AGE_S:
        return None
    if not hmac.compare_digest(parts[2], _signature(key, rater, issued)):
        return None
    return rater
