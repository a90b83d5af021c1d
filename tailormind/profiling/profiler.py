"""Profile initialisation (Eq. 9) and textual-gradient refinement (Eq. 10-14), batched over users.

For a batch of users, every LLM step is one batched ``text.complete`` call:

1. p⁽⁰⁾ from the descriptions of the recent train history D_u (strong evidence) and CF(D_u)
   (weak evidence). An empty answer or a failing model falls back to an extractive profile
   (the recent items' descriptions), recorded.
2. For n = 1..N_max: rank each Z_u item (the validation positive, plus ``z_train_items`` recent
   train items) against the validation negatives with p⁽ⁿ⁻¹⁾; loss = mean 0-based rank. Loss 0
   stops the user (Eq. 14). Otherwise the critique (the textual gradient, Eq. 13) is written from
   the profile, the top-ranked wrong items and the Z_u items, and the update (Eq. 12) rewrites the
   profile. An update whose loss is worse is rejected when ``reject_worse_updates``; with greedy
   decoding (temperature 0) the user then stops, since the next round would get the same
   prompts and so the same critique and update.

Every item description, profile and critique enters a prompt quoted
(:mod:`tailormind.prompts.ugc`): item text is untrusted, and so is what a model wrote from it.
A profile is at most ``profile_tokens`` tokens' worth of characters (the extractive one is cut to
that), so quoting never cuts one.

Only validation candidates are ranked here; the test set is not loaded by this module.

Cost: every batched step's elapsed time, and the time spent inside model backends in it
(``models.roles.busy_meter`` over the text model and the ranker's model; GPU time when one runs
on a CUDA device), is shared equally by the batch's users. Each iteration records its tokens,
``seconds`` (elapsed), ``model_seconds`` and ``gpu_seconds`` (None: no model on a GPU);
iteration 0 carries the initialisation and its first ranking.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from tailormind.config import Settings
from tailormind.core.metrics import rank_among
from tailormind.errors import ModelError
from tailormind.models.roles import TextModel, any_on_gpu, busy_meter
from tailormind.models.types import Completion, GenerationParams
from tailormind.profiling.evidence import ItemFeatures, UserEvidence
from tailormind.profiling.rankers import RankQuery, Ranker, presentation_order
from tailormind.prompts import render
from tailormind.prompts.ugc import CHARS_PER_TOKEN, quote_each, quote_ugc

#: A critique shorter than this many words carries no usable direction.
MIN_CRITIQUE_WORDS = 4


#: A text whose distinct words are fewer than this share of its words is a loop, not a profile.
MIN_DISTINCT_SHARE = 0.35


def usable(text: str) -> bool:
    """Non-empty and not degenerate (a small model looping on one phrase)."""
    words = text.lower().split()
    if not words:
        return False
    return len(words) < 12 or len(set(words)) / len(words) >= MIN_DISTINCT_SHARE


def _clip(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (``…`` marks the cut)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;.") + "…"


@dataclass
class Iteration:
    iteration: int
    profile: str
    valid_rank: int  # 1 = the validation item ranked first
    loss: float  # mean 0-based rank of the Z_u items
    accepted: bool
    critique: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    gpu_seconds: float | None = None  # None: no model of the profiler runs on a GPU


#: (elapsed, model, GPU) seconds: a point in time, or a user's share of a step.
Spent = tuple[float, float, float]


@dataclass
class ProfileState:
    evidence: UserEvidence
    profile: str = ""
    initial: str = ""
    loss: float = float("inf")
    valid_rank: int = 0
    done: bool = False
    iterations: list[Iteration] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    gpu_seconds: float = 0.0

    def charge(self, completion: Completion | None, share: Spent) -> None:
        if completion is not None:
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
        self.spend(share)

    def spend(self, share: Spent) -> None:
        """Add a share of a step's (elapsed, model, GPU) seconds."""
        self.seconds += share[0]
        self.model_seconds += share[1]
        self.gpu_seconds += share[2]

    def totals(self) -> tuple[int, int, float, float, float]:
        """(prompt tokens, completion tokens, seconds, model seconds, GPU seconds) so far."""
        return (self.prompt_tokens, self.completion_tokens, self.seconds, self.model_seconds,
                self.gpu_seconds)

    def record(self) -> dict:
        return {
            "user_id": self.evidence.user_id,
            "profile": self.profile,
            "initial_profile": self.initial,
            "iterations": json.dumps([asdict(i) for i in self.iterations], ensure_ascii=False),
            "valid_rank_initial": self.iterations[0].valid_rank if self.iterations else 0,
            "valid_rank_final": self.valid_rank,
            "iterations_run": max(0, len(self.iterations) - 1),
            "accepted_updates": sum(1 for i in self.iterations[1:] if i.accepted),
            "fallback": "; ".join(self.fallbacks) or None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": self.seconds,
        }


class Profiler:
    def __init__(self, settings: Settings, features: ItemFeatures, ranker: Ranker,
                 text: TextModel) -> None:
        self.config = settings.profiling
        self.features, self.ranker, self.text = features, ranker, text
        base = text.default_params  # the role's temperature and stops; lengths from profiling
        self.profile_params = replace(base, max_tokens=self.config.profile_tokens)
        self.critique_params = replace(base, max_tokens=self.config.critique_tokens)
        self.greedy = base.temperature == 0
        self.seed = settings.seeds.profiling
        self.max_words = max(30, int(self.config.profile_tokens * 0.6))
        self.profile_chars = CHARS_PER_TOKEN * self.config.profile_tokens
        self.critique_chars = CHARS_PER_TOKEN * self.config.critique_tokens
        #: Called before every LLM step; an exception it raises stops the batch (cancellation).
        self.checkpoint: Callable[[], None] | None = None
        models = [text, getattr(ranker, "embedder", None), getattr(ranker, "text", None)]
        self.meter, self.on_gpu = busy_meter(models), any_on_gpu(models)

    def _now(self) -> Spent:
        return (time.perf_counter(), *self.meter())

    def _share(self, since: Spent, users: int) -> Spent:
        """Each of ``users``' equal share of the (elapsed, model, GPU) seconds since ``since``."""
        now = self._now()
        return (now[0] - since[0]) / max(1, users), (now[1] - since[1]) / max(1, users), \
            (now[2] - since[2]) / max(1, users)

    # -- one batched LLM step ------------------------------------------------------------------
    def _ask(self, states: list[ProfileState], prompts: list[str], params: GenerationParams,
             what: str) -> list[Completion | None]:
        """One completion per state; a failing model gives None for all, recorded."""
        if not states:
            return []
        if self.checkpoint is not None:
            self.checkpoint()
        started = self._now()
        try:
            system = render("profiling/system.txt")
            answers: list[Completion | None] = list(self.text.complete(
                [[{"role": "system", "content": system}, {"role": "user", "content": p}]
                 for p in prompts], params))
        except ModelError as exc:
            answers = [None] * len(states)
            for state in states:
                state.fallbacks.append(f"{what}: text model failed ({exc})")
        share = self._share(started, len(states))
        for state, answer in zip(states, answers, strict=True):
            state.charge(answer, share)
        return answers

    def _descriptions(self, items: list[str]) -> list[str]:
        """The items' descriptions, each cut to ``prompt_item_chars`` (the extractive profile)."""
        limit = self.config.prompt_item_chars
        return [_clip(self.features.describe(i), limit) for i in items]

    def _quoted_items(self, items: list[str], label: str) -> list[str]:
        """The items' descriptions as quoted blocks, each cut to ``prompt_item_chars``."""
        return quote_each([self.features.describe(i) for i in items], label=label,
                          limit=self.config.prompt_item_chars)

    def _quoted_profile(self, profile: str) -> str:
        return quote_ugc(profile, label="profile", limit=self.profile_chars)

    # -- Eq. 9 ----------------------------------------------------------------------------------
    def initialise(self, evidence: list[UserEvidence]) -> list[ProfileState]:
        states = [ProfileState(evidence=e) for e in evidence]
        prompts = []
        for state in states:
            recent = state.evidence.history[-self.config.history_items:]
            cf = state.evidence.cf if self.config.use_cf else []
            prompts.append(render("profiling/profile_init.txt", max_words=self.max_words,
                                  history=self._quoted_items(recent, "item"),
                                  cf=self._quoted_items(cf, "similar item")))
        answers = self._ask(states, prompts, self.profile_params, "init")
        for state, answer in zip(states, answers, strict=True):
            text = answer.text.strip() if answer is not None else ""
            if text and not usable(text):
                state.fallbacks.append("init: the model's profile is degenerate (repetitive)")
                text = ""
            elif not text and answer is not None:
                state.fallbacks.append("init: the model returned an empty profile")
            if not text:
                text = self.extractive(state.evidence)
                if not text:
                    state.fallbacks.append("no history and no CF items: empty profile")
            state.profile = state.initial = text
        return states

    def extractive(self, evidence: UserEvidence) -> str:
        """The fallback profile: what the user recently interacted with, verbatim (cut to
        ``profile_chars``)."""
        items = evidence.history[-5:] or evidence.cf[:5]
        if not items:
            return ""
        return _clip("Recently enjoyed: " + " | ".join(self._descriptions(items[::-1])),
                     self.profile_chars)

    # -- Eq. 10-11: the loss --------------------------------------------------------------------
    def _z_items(self, evidence: UserEvidence) -> list[str]:
        """Z_u: the validation positive, then ``z_extra`` when given (an update's other new
        positives), else the ``z_train_items`` newest train items."""
        if evidence.z_extra is not None:
            return [evidence.valid_positive, *evidence.z_extra]
        extra = evidence.history[-self.config.z_train_items:] if self.config.z_train_items else []
        return [evidence.valid_positive, *extra]

    def losses(self, states: list[ProfileState], profiles: list[str], iteration: int = 0
               ) -> list[tuple[float, int, list[str]]]:
        """(loss, 1-based validation rank, top-ranked wrong items) per state.

        Each Z_u item is ranked with the validation negatives in a seeded order
        (:func:`presentation_order`, seeded by the profiling seed, user, split and
        ``iteration``), so the positive never sits in a fixed place; its 0-based rank counts the
        negatives scored at least as high (ties against the positive)."""
        queries, owners, positives = [], [], []
        for si, (state, profile) in enumerate(zip(states, profiles, strict=True)):
            evidence = state.evidence
            for z in self._z_items(evidence):
                query = RankQuery(evidence.user_id, profile, [z, *evidence.valid_negatives],
                                  split="valid", iteration=iteration)
                query.candidates = presentation_order(query, self.seed)
                queries.append(query)
                owners.append(si)
                positives.append(z)
        scores = self.ranker.score(queries)
        out: list[tuple[float, int, list[str]]] = []
        for si in range(len(states)):
            ranks, wrong = [], None
            for query, score, z in ((q, s, z) for q, s, o, z
                                    in zip(queries, scores, owners, positives, strict=True)
                                    if o == si):
                at = query.candidates.index(z)
                others = np.delete(np.arange(len(score)), at)
                ranks.append(rank_among(score[at], score[others]))
                if wrong is None:  # the validation query: its top-ranked negatives
                    order = others[np.argsort(-score[others], kind="stable")][: self.config.rank_top_k]
                    wrong = [query.candidates[j] for j in order]
            out.append((float(np.mean(ranks)), ranks[0] + 1, wrong or []))
        return out

    # -- Eq. 12-14 ------------------------------------------------------------------------------
    def refine(self, states: list[ProfileState]) -> None:
        """Refine every state in place for up to ``n_max`` rounds (critique, update, re-rank);
        a state is done at loss 0, on an unusable critique or update, or — greedy — when an
        update is rejected."""
        wrong_items = self._score_initial(states)
        for n in range(1, self.config.n_max + 1):
            active = [i for i, s in enumerate(states) if not s.done]
            if not active:
                break
            before = {i: states[i].totals() for i in active}
            kept = self._critiques(states, active, wrong_items, n)
            scored = self._updates(states, kept, n)
            self._score_updates(states, scored, n, before, wrong_items)

    def _score_initial(self, states: list[ProfileState]) -> dict[int, list[str]]:
        """Loss and rank of every initial profile (iteration 0, accepted, with the cost of the
        initialisation and this ranking); the top-ranked wrong items of each state, by index."""
        started = self._now()
        current = self.losses(states, [s.profile for s in states], iteration=0)
        share = self._share(started, len(states))
        wrong_items: dict[int, list[str]] = {}
        for i, (state, (loss, rank, wrong)) in enumerate(zip(states, current, strict=True)):
            state.loss, state.valid_rank = loss, rank
            state.spend(share)
            state.iterations.append(self._iteration(state, (0, 0, 0.0, 0.0, 0.0), Iteration(
                0, state.profile, rank, loss, accepted=True)))
            wrong_items[i] = wrong
            state.done = loss == 0 or not state.profile
        return wrong_items

    def _critiques(self, states: list[ProfileState], active: list[int],
                   wrong_items: dict[int, list[str]], n: int) -> list[tuple[int, str]]:
        """Eq. 13: ``(state index, critique)`` for the active states whose critique is usable;
        the others are done (an unusable answer recorded)."""
        critiques = self._ask(
            [states[i] for i in active],
            [render("profiling/critique.txt", rank=states[i].valid_rank,
                    total=states[i].evidence.valid_set_size,
                    profile=self._quoted_profile(states[i].profile),
                    wrong=self._quoted_items(wrong_items[i], "wrongly ranked item"),
                    positives=self._quoted_items(self._z_items(states[i].evidence),
                                                 "chosen item"),
                    max_words=max(20, int(self.config.critique_tokens * 0.6)))
             for i in active],
            self.critique_params, "critique")
        kept: list[tuple[int, str]] = []
        for i, critique in zip(active, critiques, strict=True):
            text = critique.text.strip() if critique is not None else ""
            if len(text.split()) < MIN_CRITIQUE_WORDS or not usable(text):
                if critique is not None:
                    states[i].fallbacks.append(f"iteration {n}: critique unusable, stopped")
                states[i].done = True
                continue
            kept.append((i, text))
        return kept

    def _updates(self, states: list[ProfileState], kept: list[tuple[int, str]], n: int
                 ) -> list[tuple[int, str, str]]:
        """Eq. 12: ``(state index, critique, new profile)`` for the usable updates; a state
        whose update is empty or degenerate is done (recorded)."""
        updates = self._ask(
            [states[i] for i, _ in kept],
            [render("profiling/update.txt", profile=self._quoted_profile(states[i].profile),
                    critique=quote_ugc(text, label="feedback", limit=self.critique_chars),
                    max_words=self.max_words) for i, text in kept],
            self.profile_params, "update")
        candidates = [(i, text, u.text.strip() if u is not None else "")
                      for (i, text), u in zip(kept, updates, strict=True)]
        for i, _, new in candidates:
            if not usable(new):
                states[i].fallbacks.append(f"iteration {n}: empty or degenerate update "
                                           f"rejected")
                states[i].done = True
        return [(i, c, new) for i, c, new in candidates if usable(new)]

    def _score_updates(self, states: list[ProfileState], scored: list[tuple[int, str, str]],
                       n: int, before: dict[int, tuple[int, int, float, float, float]],
                       wrong_items: dict[int, list[str]]) -> None:
        """Rank with each new profile, record iteration ``n`` (its cost since ``before``) and
        keep the profile unless it is worse and ``reject_worse_updates``."""
        started = self._now()
        new_losses = self.losses([states[i] for i, _, _ in scored],
                                 [new for _, _, new in scored], iteration=n)
        share = self._share(started, len(scored))
        for (i, critique, new), (loss, rank, wrong) in zip(scored, new_losses, strict=True):
            state = states[i]
            state.spend(share)
            accepted = not (self.config.reject_worse_updates and loss > state.loss)
            state.iterations.append(self._iteration(state, before[i], Iteration(
                n, new, rank, loss, accepted, critique=critique)))
            if accepted:
                state.profile, state.loss, state.valid_rank = new, loss, rank
                wrong_items[i] = wrong
            state.done = state.loss == 0 or (not accepted and self.greedy)

    def _iteration(self, state: ProfileState, before: tuple[int, int, float, float, float],
                   entry: Iteration) -> Iteration:
        """``entry`` with the state's tokens and seconds spent since ``before``."""
        p, c, s, m, g = (now - then for now, then in zip(state.totals(), before, strict=True))
        return replace(entry, prompt_tokens=int(p), completion_tokens=int(c), seconds=s,
                       model_seconds=m, gpu_seconds=g if self.on_gpu else None)
