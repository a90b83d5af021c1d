"""Image I/O of the roles: decoding what callers pass, PNG encoding, and content hashes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from tailormind.errors import ModelInputError

#: An image given to a role: a path, raw encoded bytes, or a PIL image.
ImageInput = str | Path | bytes | Image.Image


def load_image(image: ImageInput) -> Image.Image:
    """An RGB PIL image; a file or bytes that do not decode raise :class:`ModelInputError`."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        if isinstance(image, bytes):
            with Image.open(io.BytesIO(image)) as opened:
                return opened.convert("RGB")
        with Image.open(image) as opened:
            return opened.convert("RGB")
    except FileNotFoundError as exc:
        raise ModelInputError(f"{image}: image file does not exist") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        where = "image bytes" if isinstance(image, bytes) else str(image)
        raise ModelInputError(f"{where}: cannot decode image ({exc})") from exc


def image_digest(image: ImageInput) -> str:
    """Content hash of an image (mode, size, pixels) for cache keys."""
    image = image if isinstance(image, Image.Image) else load_image(image)
    digest = hashlib.sha256(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG (the call cache, the Serve wire, data URLs)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    """An RGB image from encoded bytes (the inverse of :func:`png_bytes`)."""
    return Image.open(io.BytesIO(data)).convert("RGB")
