"""The generator's numbered steps and the one clock that times them.

:meth:`~tailormind.generation.pipeline.Generator.generate` runs :data:`STEPS` in order, each a
method of the same name returning a typed result (:mod:`~tailormind.generation.step_results`).
Every step reports its name to ``progress`` as it starts; the write-and-reflect step also reports
each reflection round, so a job's progress (``api_jobs``) counts :func:`progress_stages` and
never hard-codes a name. Standard library only: the job coordinator imports it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: The steps of one post, in order: (number, name, what it does).
STEPS: tuple[tuple[int, str, str], ...] = (
    (1, "inputs", "the profile, the user's evidence, platform, kind and seed"),
    (2, "exemplars", "Eq. 15: style exemplars from the history and CF(D_u)"),
    (3, "ideate", "Eq. 16: a template subset S and ideas; the first idea is written"),
    (4, "write_and_reflect", "a draft, then Eq. 17-19: revisions scored with their images"),
    (5, "media", "the video of a video post (a post's images come from step 4)"),
    (6, "bundle", "post.json, the media and preview.html, written whole"),
)
STEP_NAMES = tuple(name for _, name, _ in STEPS)
#: The progress name of reflection round ``n`` (within ``write_and_reflect``).
ROUND_STAGE = "write_and_reflect round {n}"


def progress_stages(reflection_rounds: int) -> list[str]:
    """Every name ``progress`` can report for one post, in order: the steps, with the
    reflection rounds after ``write_and_reflect`` (greedy decoding may stop rounds early)."""
    stages: list[str] = []
    for name in STEP_NAMES:
        stages.append(name)
        if name == "write_and_reflect":
            stages += [ROUND_STAGE.format(n=n) for n in range(1, reflection_rounds + 1)]
    return stages


#: Total (model seconds, GPU seconds) spent in model backends so far (``models.roles.busy_meter``).
Meter = Callable[[], tuple[float, float]]


@dataclass
class StepClock:
    """One clock for one post: time is charged to the current label until the next
    :meth:`switch`; ``tokens`` counts LLM tokens per label. With a ``meter``, the model time
    (and GPU time) spent between two switches is charged to the label too, in
    ``model_seconds`` and ``gpu_seconds``."""

    started: float = field(default_factory=time.perf_counter)
    seconds: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)
    label: str = ""
    _since: float = 0.0
    meter: Meter | None = None
    model_seconds: Counter = field(default_factory=Counter)
    gpu_seconds: Counter = field(default_factory=Counter)
    _metered: tuple[float, float] = (0.0, 0.0)

    def switch(self, label: str) -> None:
        """Charge the time since the last switch to the current label, then time ``label``."""
        now = time.perf_counter()
        metered = self.meter() if self.meter is not None else (0.0, 0.0)
        if self.label:
            self.seconds[self.label] += now - self._since
            if self.meter is not None:
                self.model_seconds[self.label] += metered[0] - self._metered[0]
                self.gpu_seconds[self.label] += metered[1] - self._metered[1]
        self.label, self._since, self._metered = label, now, metered

    def total(self) -> float:
        return time.perf_counter() - self.started
