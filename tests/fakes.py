"""Scripted model roles shared by the tests: text models that answer each prompt by its *kind*.

Every prompt template declares a kind (``{#- kind: critique -#}`` on its first line) and
:func:`tailormind.prompts.kind_of` tells which kind of template produced a prompt, from the
templates themselves. A fake here maps kinds to answers, so rewording a template changes no
test: nothing below matches the wording of a prompt. What an answer needs from the prompt it
reads from the quoted blocks (:func:`~tailormind.prompts.ugc.quote_ugc`) by their labels, which
the code sets (``chosen item 1``, ``item 3``, ``post``), or from the assistant prefill the
code puts after the prompt (:data:`~tailormind.generation.fields.PREFILLS`).

* :class:`ScriptedText`: the text role; ``answers`` maps a kind (or None: a prompt of no
  template) to a string or to a function of the :class:`Call`; every call is recorded.
* :class:`ProfilingText`: the profiler's init, critique and update (the dummy engine of the
  textual-gradient loop).
* :class:`ScriptedWriter` (JSON answers) and :class:`FieldWriter` (field by field, with a small
  model's junk): generation's ideation and writing.
* :class:`ReverseRanker`: the listwise ranker's windows, by descending item number.
* :func:`in_turn` (answers from a script, in order) and :func:`down` (a server that fails).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Union

from tailormind.errors import ModelError
from tailormind.models.roles import TextModel
from tailormind.models.types import Completion, GenerationParams
from tailormind.prompts import kind_of
from tailormind.prompts.ugc import CLOSE, OPEN

#: A quoted block as ``quote_ugc`` writes it: (label, body).
_BLOCK = re.compile(r"([^>\n]*)".join(map(re.escape, OPEN.split("{label}")))
                    + r"\n(.*?)\n" + re.escape(CLOSE), re.S)


@dataclass
class Call:
    """One conversation a scripted model was asked, and what it answered."""

    conversation: list[dict]
    params: GenerationParams
    json_schema: dict | None
    answer: str | None = None

    @cached_property
    def prompt(self) -> str:
        """The first user message: the task (later user messages are re-asks)."""
        return next((m["content"] for m in self.conversation
                     if m["role"] == "user" and isinstance(m["content"], str)), "")

    @cached_property
    def kind(self) -> str | None:
        """The kind of template the prompt came from (None: no template)."""
        return kind_of(self.prompt)

    @property
    def prefill(self) -> str:
        """The assistant message the answer continues, or "" when there is none."""
        last = self.conversation[-1]
        return last["content"] if last["role"] == "assistant" else ""

    @property
    def text(self) -> str:
        """Every message's text, joined."""
        return "\n".join(str(m["content"]) for m in self.conversation)

    def blocks(self) -> list[tuple[str, str]]:
        """The prompt's quoted blocks as (label, body), in order."""
        return _BLOCK.findall(self.prompt)

    def quoted(self, label: str) -> list[str]:
        """The bodies of the prompt's quoted blocks labelled ``label`` or ``label N``."""
        return [body for name, body in self.blocks()
                if name == label or re.fullmatch(re.escape(label) + r" \d+", name)]

    def numbers(self, label: str) -> list[int]:
        """N of each block labelled ``label N``, in order (the items of a ranking window)."""
        return [int(name.rsplit(" ", 1)[1]) for name, _ in self.blocks()
                if re.fullmatch(re.escape(label) + r" \d+", name)]


Answer = Union[str, Callable[[Call], str]]


class ScriptedText(TextModel):
    """A ``text`` role that answers each conversation by the kind of its first user prompt:
    ``answers[kind]`` (a string, or a function of the :class:`Call`), else ``otherwise``; a
    prompt of a kind it has no answer for fails the test. ``batches`` records every call.
    Token counts are the words of the conversation and of the answer, or fixed ``tokens``
    (prompt, completion)."""

    def __init__(self, answers: Mapping[str | None, Answer] | None = None, *,
                 otherwise: Answer | None = None, backend: str = "scripted",
                 model_id: str = "scripted", json_retries: int = 0,
                 follows_json: bool = True, tokens: tuple[int, int] | None = None) -> None:
        super().__init__(backend=backend, model_id=model_id, json_retries=json_retries,
                         follows_json=follows_json)
        self.answers: dict[str | None, Answer] = dict(answers or {})
        self.otherwise, self.tokens = otherwise, tokens
        self.batches: list[list[Call]] = []

    def answer(self, call: Call) -> str:
        answer = self.answers.get(call.kind, self.otherwise)
        if answer is None:
            raise AssertionError(f"{self.model_id}: no scripted answer for a {call.kind!r} "
                                 f"prompt: {call.prompt[:200]!r}")
        return answer if isinstance(answer, str) else answer(call)

    def _generate(self, batch, params, json_schema):
        calls = [Call(list(conversation), params, json_schema) for conversation in batch]
        self.batches.append(calls)
        out = []
        for call in calls:
            call.answer = self.answer(call)
            prompt_tokens, completion_tokens = self.tokens or (len(call.text.split()),
                                                               len(call.answer.split()))
            out.append(Completion(text=call.answer, prompt_tokens=prompt_tokens,
                                  completion_tokens=completion_tokens, model=self.model_id))
        return out

    @property
    def calls(self) -> list[Call]:
        return [call for batch in self.batches for call in batch]

    @property
    def conversations(self) -> list[list[dict]]:
        return [call.conversation for call in self.calls]

    def prompts(self, kind: str | None = None) -> list[str]:
        """Every user message sent (re-asks included), or only those of ``kind``."""
        return [m["content"] for call in self.calls for m in call.conversation
                if m["role"] == "user" and isinstance(m["content"], str)
                and (kind is None or kind_of(m["content"]) == kind)]


class Script:
    """An answer function that gives its answers in order, whatever the prompt (an empty
    script raises IndexError); ``left`` is what has not been used."""

    def __init__(self, answers: Iterable[str]) -> None:
        self.left = list(answers)

    def __call__(self, call: Call) -> str:
        return self.left.pop(0)


def in_turn(answers: Iterable[str]) -> Script:
    """``answers`` given in order, one per call (see :class:`Script`)."""
    return Script(answers)


def down(message: str = "models.text: server timed out") -> Callable[[Call], str]:
    """An answer function that fails as a server that is down or times out does."""
    def fail(call: Call) -> str:
        raise ModelError(message)
    return fail


# -- profiling -----------------------------------------------------------------------------------

class ProfilingText(ScriptedText):
    """The profiler's dummy engine (as textgrad tests have): ``profile_init`` -> ``init`` (a
    vague profile); ``critique`` -> names the chosen item's description ("Stress this: ...");
    ``update`` -> the critique's suggestion. So a refinement moves the profile onto the
    validation item. ``critique`` / ``update`` replace those answers; ``fail_on`` names a kind
    whose every call fails as a timed-out server."""

    def __init__(self, *, init: str = "Likes many things.", critique: str | None = None,
                 update: str | None = None, fail_on: str | None = None) -> None:
        super().__init__({
            "profile_init": init,
            "critique": critique if critique is not None else self._critique,
            "update": update if update is not None else self._update,
        }, backend="prompted", model_id="prompted")
        if fail_on is not None:
            self.answers[fail_on] = down()

    @staticmethod
    def _critique(call: Call) -> str:
        return "Stress this: " + call.quoted("chosen item")[0].split("\n")[0]

    @staticmethod
    def _update(call: Call) -> str:
        return call.quoted("feedback")[0].split("Stress this: ", 1)[-1].split("\n")[0]


class ReverseRanker(ScriptedText):
    """Ranks each window by descending item number, but drops the best and invents [99]."""

    def __init__(self) -> None:
        super().__init__({"rank": self._rank}, backend="reverse", model_id="reverse")

    @staticmethod
    def _rank(call: Call) -> str:
        return json.dumps({"ranking": sorted(call.numbers("item"), reverse=True)[1:] + [99]})

    @property
    def windows(self) -> int:
        return len(self.calls)


# -- generation ----------------------------------------------------------------------------------

def offered_types(call: Call) -> list[str]:
    """The catalogue's content types an ideation prompt offers, in the order it lists them."""
    from tailormind.generation.catalog import packaged_catalog

    catalog = packaged_catalog()
    names = [t.name for t in (*catalog.ideas, *catalog.video_types)]
    found = [(call.prompt.find(name), name) for name in names if name in call.prompt]
    return [name for _, name in sorted(found)]


class ScriptedWriter(ScriptedText):
    """Answers ideation and writing with valid JSON: one idea of the first type offered; a post
    whose body grows and shrinks with each call (so relevance can move); a video whose middle
    shot is 90 s long. ``bad_json`` answers prose to the writing prompts. ``steps`` names each
    call: ideate, write, revise (a prompt quoting a previous version) or write-video."""

    def __init__(self, bad_json: bool = False) -> None:
        super().__init__({"ideate": self._ideas, "write_post": self._post,
                          "write_video": self._video},
                         model_id="scripted-writer", json_retries=1)
        self.bad_json = bad_json
        self.steps: list[str] = []

    def _ideas(self, call: Call) -> str:
        self.steps.append("ideate")
        return json.dumps({"ideas": [{"idea": "A close look at the items they love",
                                      "type": offered_types(call)[0], "basis": "history"}]})

    def _video(self, call: Call) -> str:
        if self.bad_json:
            self.steps.append("write")
            return "I would rather write a poem."
        self.steps.append("write-video")
        return json.dumps({"title": "Three things about tag0001", "introduction":
                           "A short video about tag0001 items.", "hashtags":
                           ["#tag0001", "video"], "storyboard": [
                               {"prompt": "opening", "duration": 3, "caption": "Hi"},
                               {"prompt": "middle", "duration": 90, "caption": "Look"},
                               {"prompt": "end", "duration": 2, "caption": "Bye"}]})

    def _post(self, call: Call) -> str:
        if self.bad_json:
            self.steps.append("write")
            return "I would rather write a poem."
        self.steps.append("revise" if call.quoted("previous version") else "write")
        n = len(self.steps)
        return json.dumps({"title": f"Notes on item {n}", "body": "Item about tag0001 "
                           * (1 + n % 3), "hashtags": ["#tag0001", "#tag0002"],
                           "images": [{"prompt": "a shelf of items", "caption": "cover"},
                                      {"prompt": "a close-up", "caption": "detail"}]})


class FieldWriter(ScriptedText):
    """Answers each plain-text field question (kind ``field``) by the field its prefill asks
    for, with the junk a small model adds (labels, quotes, placeholders, lead-ins, echoed
    markers). Fields named in ``empty`` answer nothing; ``obey_injection`` answers HACKED
    whenever the injected instruction is in the prompt."""

    ANSWERS = {
        "idea": ' "A close look at the tag0001 items they love" [Insert Idea]\nMore text',
        "title": ' **"Notes on tag0001"**\nA second line',
        "body": "## Intro\nSure! Here is the text:\n<<<ugc profile>>> Item about tag0001, tried "
                "and loved. [Your Name]\n\nSecond paragraph about tag0002.",
        "image": " a shelf of tag0001 items.\nExtra",
        "shot": " the opening of a tag0001 story.",
    }

    def __init__(self, empty: tuple[str, ...] = (), obey_injection: bool = False) -> None:
        super().__init__({"field": self._field}, model_id="field-writer", follows_json=False)
        self.empty, self.obey = empty, obey_injection

    def _field(self, call: Call) -> str:
        from tailormind.generation.fields import PREFILLS

        assert call.json_schema is None, "fields mode never asks for JSON"
        name = {prefill: name for name, prefill in PREFILLS.items()}[call.prefill]
        if self.obey and "IGNORE PREVIOUS INSTRUCTIONS" in call.prompt:
            return "HACKED"
        return "" if name in self.empty else self.ANSWERS[name]


def rule_judge() -> ScriptedText:
    """Scores a generated post (the scripted writer's "Notes on item ...") 8 for novelty and 6
    for aesthetics (and taste fit), anything else (the ground-truth item) 3 and 5; names a
    claim that is in a generated post and none for the ground truth."""
    def by_post(generated: str, other: str) -> Callable[[Call], str]:
        return lambda call: generated if "Notes on item" in call.prompt else other

    return ScriptedText({"judge_novelty": by_post("8", "3"),
                         "judge_hallucination": by_post(" Item about tag0001", " none"),
                         "judge_aesthetic": by_post("6", "5"), "judge_coherence": by_post("6", "5")},
                        model_id="rule-judge", follows_json=False)
