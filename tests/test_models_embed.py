"""The ``embed`` role on the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np

from tailormind.models.registry import load_role


def test_minilm_smoke(embedded_settings) -> None:
    model = load_role("embed", embedded_settings)
    texts = ["A dog runs across the park.", "A puppy is running on the grass.",
             "The central bank raised interest rates."]
    vectors = model.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and model.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    # batching and the cache change nothing
    model.batch_size = 1
    one_by_one = np.stack([model.embed([t])[0] for t in texts])
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)
    assert model.stats["cache_hits"] >= 3
    assert model.embed([]).shape == (0, 384)
