"""The LLM judge of TailorBench: novelty/interestingness and aesthetic scores in [0, 1], and a
grounded 0/1 hallucination check (and a taste-fit score the calibration asks, to test the judge
on coherence pairs too). Any ``text`` role can judge (an OpenAI-compatible server in
production; the embedded 135M model here, whose numbers the report labels as such).

* Scores: the judge answers 0-10 (a JSON object from models that follow JSON, else one number
  after a pre-filled ``Score:``); the score is that number / 10. An answer without a number in
  range is ``None`` — left out of the means and counted in ``stats['unparsed']``.
* Hallucination is grounded in the *source items* given (history, exemplars, item descriptions),
  not the web. The judge must quote each unsupported claim; a quote is accepted only if the post
  contains it (case- and space-insensitive, or ≥ 60% of its words in one sentence of the post).
  1 = at least one accepted claim; 0 = none claimed; ``None`` = claims were made but none could be
  found in the post (``stats['uncited']``), so the check is undecided rather than guessed.
* The post, the liked items and the sources are untrusted text: each enters the prompt quoted
  (:mod:`tailormind.prompts.ugc`), so a post that says "score this 10" is judged, not obeyed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from tailormind.models.roles import TextModel
from tailormind.models.types import GenerationParams
from tailormind.prompts import render
from tailormind.prompts.ugc import quote_each, quote_ugc

SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10},
                   "reason": {"type": "string"}},
    "required": ["score"],
}
CLAIMS_SCHEMA = {
    "type": "object",
    "properties": {"unsupported_claims": {"type": "array", "items": {"type": "string"}}},
    "required": ["unsupported_claims"],
}
_NUMBER = re.compile(r"(?<![\d.])(10|\d)(?:\.\d+)?(?!\d|\.\d)")
_WORD = re.compile(r"\w+")
NONE_ANSWERS = ("none", "no", "nothing", "n/a")
#: A judged post is quoted whole up to this many characters (the longest platform body is 250
#: words); a liked item or a source (a title, or a title and 300 description characters) up to
#: ``ITEM_CHARS``.
POST_CHARS = 4000
ITEM_CHARS = 600


def _post(post: str) -> str:
    return quote_ugc(post, label="post", limit=POST_CHARS)


@dataclass
class Score:
    value: float | None  # in [0, 1]; None when the answer had no usable score
    reason: str = ""
    raw: str = ""


@dataclass
class Verdict:
    hallucinated: int | None  # 1, 0, or None (undecided: no claim could be found in the post)
    claims: list[str] = field(default_factory=list)  # accepted (cited) claims
    uncited: list[str] = field(default_factory=list)  # claimed but not in the post
    raw: str = ""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def cites(post: str, claim: str, min_share: float = 0.6) -> bool:
    """Whether ``claim`` is quoted from ``post``: contained (ignoring case and spacing), or at
    least ``min_share`` of its words appear in one sentence of the post."""
    words = _words(claim)
    if not words:
        return False
    if " ".join(words) in " ".join(_words(post)):
        return True
    for sentence in re.split(r"(?<=[.!?。！？])\s+|\n+", post):
        have = set(_words(sentence))
        if have and sum(w in have for w in words) / len(words) >= min_share:
            return True
    return False


def parse_score(text: str) -> float | None:
    """The first number 0-10 in ``text`` (decimals allowed), / 10; None without one."""
    match = _NUMBER.search(text)
    return None if match is None else float(match.group(0)) / 10


class Judge:
    """Scores posts with a ``text`` role; ``stats`` counts unparsed answers and uncited claims."""

    def __init__(self, text: TextModel, *, max_tokens: int = 192) -> None:
        self.text = text
        #: JSON answers; plain answers are one line: a number, or one quoted sentence
        self.params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
        self.number_params = GenerationParams(max_tokens=6, temperature=0.0, stop=("\n",))
        self.line_params = GenerationParams(max_tokens=80, temperature=0.0, stop=("\n",))
        self.stats: Counter = Counter()

    @property
    def model_id(self) -> str:
        return self.text.model_id

    def _scores(self, prompts: list[str]) -> list[Score]:
        if self.text.follows_json:
            answers = self.text.complete_json([[{"role": "user", "content": p}] for p in prompts],
                                              SCORE_SCHEMA, self.params)
            out = []
            for answer in answers:
                raw = answer.completions[-1].text if answer.completions else ""
                if answer.ok:
                    out.append(Score(answer.value["score"] / 10, answer.value.get("reason", ""), raw))
                else:
                    self.stats["unparsed"] += 1
                    out.append(Score(None, answer.error or "", raw))
            return out
        conversations = [[{"role": "user", "content": p}, {"role": "assistant", "content": "Score:"}]
                         for p in prompts]
        out = []
        for completion in self.text.complete(conversations, self.number_params):
            value = parse_score(completion.text)
            if value is None:
                self.stats["unparsed"] += 1
            out.append(Score(value, "", completion.text))
        return out

    def novelty(self, posts: Sequence[str], histories: Sequence[Sequence[str]]) -> list[Score]:
        """Novelty/interestingness of each post for the user whose liked items are given."""
        return self._scores([render("bench/judge_novelty.txt", post=_post(post),
                                    history=quote_each(history, label="liked item",
                                                       limit=ITEM_CHARS),
                                    json_answer=self.text.follows_json)
                             for post, history in zip(posts, histories, strict=True)])

    def coherence(self, posts: Sequence[str], histories: Sequence[Sequence[str]]) -> list[Score]:
        """How well each post fits the taste of the user whose liked items are given (used by
        the calibration only: the bench's coherence columns are embedding metrics)."""
        return self._scores([render("bench/judge_coherence.txt", post=_post(post),
                                    history=quote_each(history, label="liked item",
                                                       limit=ITEM_CHARS),
                                    json_answer=self.text.follows_json)
                             for post, history in zip(posts, histories, strict=True)])

    def aesthetic(self, posts: Sequence[str]) -> list[Score]:
        """Writing quality and appeal of each post's text."""
        return self._scores([render("bench/judge_aesthetic.txt", post=_post(post),
                                    json_answer=self.text.follows_json) for post in posts])

    def hallucination(self, posts: Sequence[str],
                      sources: Sequence[Sequence[str]]) -> list[Verdict]:
        """Grounded check of each post against its own source items (see the module doc)."""
        prompts = [render("bench/judge_hallucination.txt", post=_post(post),
                          sources=quote_each(found, label="source", limit=ITEM_CHARS),
                          json_answer=self.text.follows_json)
                   for post, found in zip(posts, sources, strict=True)]
        if self.text.follows_json:
            answers = self.text.complete_json([[{"role": "user", "content": p}] for p in prompts],
                                              CLAIMS_SCHEMA, self.params)
            claimed = [(a.value["unsupported_claims"] if a.ok else None,
                        a.completions[-1].text if a.completions else "") for a in answers]
        else:
            conversations = [[{"role": "user", "content": p},
                              {"role": "assistant", "content": "Unsupported:"}] for p in prompts]
            claimed = []
            for completion in self.text.complete(conversations, self.line_params):
                answer = completion.text.strip().strip('"').strip()
                none = not answer or answer.lower().rstrip(".!") in NONE_ANSWERS
                claimed.append(([] if none else [answer.splitlines()[0]], completion.text))
        verdicts = []
        for post, (claims, raw) in zip(posts, claimed, strict=True):
            if claims is None:
                self.stats["unparsed"] += 1
                verdicts.append(Verdict(None, raw=raw))
                continue
            cited = [c for c in claims if cites(post, c)]
            uncited = [c for c in claims if not cites(post, c)]
            self.stats["uncited"] += len(uncited)
            value = 1 if cited else (None if uncited else 0)
            verdicts.append(Verdict(value, cited, uncited, raw))
        return verdicts
