"""``image`` without an image model: a typographic cover card rendered with PIL.

Honest by design: the card typesets the post's title and key phrases over a gradient whose palette
comes from the profile text; it is labelled as a card (``kind="card"`` and a small mark on the
image), never passed off as a generated picture. The font is Noto Sans CJK SC (SIL OFL 1.1, from
the PyPI package ``mplfonts`` or Debian's ``fonts-noto-cjk``), so Chinese titles render.
"""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from tailormind.models.assets import card_font
from tailormind.models.backend_config import BackendOptions
from tailormind.models.roles import ImageGenerator
from tailormind.models.types import ImageRequest

#: Aspect ratios the platforms use (width:height): square, Rednote 3:4, cover 16:9, story 9:16.
ASPECT_RATIOS: dict[str, tuple[int, int]] = {"1:1": (1, 1), "3:4": (3, 4), "4:3": (4, 3),
                                              "16:9": (16, 9), "9:16": (9, 16)}
CARD_LABEL = "TailorMind · text card"


class CardOptions(BackendOptions):
    font: Path | None = None
    label: bool = True


def size_for(aspect: str, long_side: int = 1280) -> tuple[int, int]:
    """``(width, height)`` for a named aspect ratio, long side ``long_side``, both even."""
    w, h = ASPECT_RATIOS[aspect]
    scale = long_side / max(w, h)
    return (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)


def palette(hint: str) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """(top colour, bottom colour, accent) from a stable hash of ``hint``: same text, same colours."""
    digest = hashlib.sha256(hint.encode()).digest()
    hue = digest[0] / 255
    shift = 0.08 + digest[1] / 255 * 0.12

    def rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
        return int(r * 255), int(g * 255), int(b * 255)

    return rgb(hue, 0.55, 0.32), rgb(hue + shift, 0.65, 0.16), rgb(hue + 0.5, 0.45, 0.95)


class CardImage(ImageGenerator):
    kind = "card"

    def __init__(self, *, font: Path | None = None, label: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.font_path = Path(font) if font else card_font()
        self.label = label

    def _font(self, size: int) -> ImageFont.FreeTypeFont:
        return _load_font(str(self.font_path), size)

    def _render(self, request: ImageRequest) -> Image.Image:
        width, height = request.width, request.height
        top, bottom, accent = palette(request.palette_hint or request.prompt)
        image = _gradient(width, height, top, bottom)
        draw = ImageDraw.Draw(image)
        unit = min(width, height)
        margin = int(unit * 0.08)
        text_width = width - 2 * margin
        y = margin
        draw.rectangle([margin, y, margin + int(unit * 0.12), y + max(4, unit // 120)], fill=accent)
        y += int(unit * 0.05)
        title = (request.title or request.prompt).strip()
        title_font = self._fit(title, text_width, int(height * 0.45), start=int(unit * 0.11))
        for line in wrap(title, title_font, text_width):
            draw.text((margin, y), line, font=title_font, fill=(255, 255, 255))
            y += int(title_font.size * 1.25)
        y += int(unit * 0.04)
        phrase_font = self._font(max(12, int(unit * 0.045)))
        for phrase in request.phrases[:6]:
            lines = wrap(phrase, phrase_font, text_width - int(unit * 0.05))
            if y + len(lines) * phrase_font.size * 1.3 > height - margin * 2:
                break
            draw.ellipse([margin, y + phrase_font.size * 0.5, margin + phrase_font.size * 0.4,
                          y + phrase_font.size * 0.9], fill=accent)
            for line in lines:
                draw.text((margin + int(unit * 0.05), y), line, font=phrase_font,
                          fill=(235, 235, 235))
                y += int(phrase_font.size * 1.3)
            y += int(phrase_font.size * 0.4)
        if request.caption:
            self._caption(image, request.caption, unit)
        if self.label:
            label_font = self._font(max(10, int(unit * 0.022)))
            box = draw.textbbox((0, 0), CARD_LABEL, font=label_font)
            draw.text((width - margin - (box[2] - box[0]), height - margin // 2 - (box[3] - box[1])),
                      CARD_LABEL, font=label_font, fill=(200, 200, 200))
        return image

    def _fit(self, text: str, width: int, max_height: int, start: int) -> ImageFont.FreeTypeFont:
        """The largest font size (down from ``start``) at which ``text`` wraps into ``max_height``."""
        size = start
        while size > 12:
            font = self._font(size)
            if len(wrap(text, font, width)) * size * 1.25 <= max_height:
                return font
            size = int(size * 0.9)
        return self._font(12)

    def _caption(self, image: Image.Image, caption: str, unit: int) -> None:
        draw_caption(image, caption, self._font(max(12, int(unit * 0.045))))


def draw_caption(image: Image.Image, caption: str, font: ImageFont.FreeTypeFont) -> None:
    """A caption bar on the lower part of ``image`` (white text on translucent black), in place.

    Only the bar's rows are composited (the rest of the frame is unchanged anyway); a video draws
    the same caption on every frame of a shot, so the line breaking is cached."""
    width, height = image.size
    margin = int(min(width, height) * 0.06)
    lines = _wrapped(caption, font, width - 2 * margin)[:3]
    line_height = int(font.size * 1.3)
    bar_height = line_height * len(lines) + margin // 2
    top = height - bar_height - margin
    bar = (0, max(0, top - margin // 4), width, min(height, top + bar_height + 1))
    if bar[1] < bar[3]:
        region = image.crop(bar).convert("RGBA")
        shade = Image.new("RGBA", region.size, (0, 0, 0, 150))
        image.paste(Image.alpha_composite(region, shade).convert("RGB"), bar[:2])
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        box = draw.textbbox((0, 0), line, font=font)
        draw.text(((width - (box[2] - box[0])) // 2, top + i * line_height), line, font=font,
                  fill=(255, 255, 255))


@lru_cache(maxsize=256)
def _wrapped(text: str, font: ImageFont.FreeTypeFont, width: int) -> tuple[str, ...]:
    return tuple(wrap(text, font, width))


@lru_cache(maxsize=64)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def card_font_at(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    return _load_font(str(path or card_font()), size)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy line breaking by rendered width: at spaces for Latin words, anywhere in CJK runs."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for token in _tokens(paragraph):
            candidate = line + token
            if not line or font.getlength(candidate) <= width:
                line = candidate
                continue
            lines.append(line.rstrip())
            line = token.lstrip()
            while font.getlength(line) > width and len(line) > 1:  # one over-long word
                cut = max(1, _fits(line, font, width))
                lines.append(line[:cut])
                line = line[cut:]
        if line.strip():
            lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Latin words keep their trailing space; every CJK character is its own token."""
    tokens, word = [], ""
    for ch in text:
        if _is_wide(ch):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        else:
            word += ch
            if ch == " ":
                tokens.append(word)
                word = ""
    if word:
        tokens.append(word)
    return tokens


def _is_wide(ch: str) -> bool:
    code = ord(ch)
    return (0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF
            or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F)


def _fits(text: str, font: ImageFont.FreeTypeFont, width: int) -> int:
    for i in range(len(text), 0, -1):
        if font.getlength(text[:i]) <= width:
            return i
    return 1


def _gradient(width: int, height: int, top: tuple[int, int, int],
              bottom: tuple[int, int, int]) -> Image.Image:
    column = Image.linear_gradient("L").resize((1, height))
    image = Image.composite(Image.new("RGB", (1, height), bottom), Image.new("RGB", (1, height), top),
                            column)
    return image.resize((width, height))
