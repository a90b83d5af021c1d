"""The closed vocabularies every layer shares, each written once.

``Literal`` aliases let pydantic models (the config, the catalog, the API) validate against the
same tuples the code iterates over, so no list can drift from another.
"""

from __future__ import annotations

from typing import Literal

#: Platform styles; each has a file ``tailormind/generation/catalog/platforms/<name>.yaml``.
PLATFORMS = ("rednote", "hupu", "bilibili")
PlatformName = Literal[PLATFORMS]  # type: ignore[valid-type]

#: What the generator makes: an image-text post or a short video.
KINDS = ("post", "video")
Kind = Literal[KINDS]  # type: ignore[valid-type]

#: TailorBench's methods, in report order: the system, the ground truth, the ablations.
BENCH_METHODS = ("tailormind", "ground_truth", "profile_free", "no_rag", "no_reflection", "no_cf")
BenchMethodName = Literal[BENCH_METHODS]  # type: ignore[valid-type]

#: The file that makes a directory a workspace.
MANIFEST = "workspace.json"
