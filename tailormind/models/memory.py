"""Refuse to load weights that cannot fit, before the process is killed trying."""

from __future__ import annotations

from pathlib import Path

import psutil

from tailormind.errors import ModelError

GIB = 1024**3
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")


def weights_bytes(path: Path) -> int:
    """Bytes of weight files in a file or directory (recursively)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES
               and p.is_file())


def check_fits(path: Path, key: str, *, max_gib: float | None, expansion: float = 1.0) -> None:
    """Raise if ``expansion × size of the weights`` exceeds ``max_gib`` or the memory available.

    ``expansion`` accounts for dequantisation (a Q4 GGUF is ~7x larger as float32).
    """
    need = weights_bytes(path) * expansion
    limit = max_gib * GIB if max_gib is not None else psutil.virtual_memory().available
    source = f"{key}.max_memory_gib" if max_gib is not None else "the memory available"
    if need > limit:
        raise ModelError(
            f"{key}: {path} needs about {need / GIB:.1f} GiB, more than {source} "
            f"({limit / GIB:.1f} GiB); use a smaller model, a GPU device, or a serve/openai backend"
        )
