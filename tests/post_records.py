"""A complete, valid ``post.json`` for tests that write bundles by hand."""

from __future__ import annotations

from tailormind.generation.post_record import PostRecord


def post_record(user_id: str, post_id: str, version: int = 0, text: str = "",
                **fields: object) -> PostRecord:
    """A complete, valid ``post.json``; ``version`` is carried in ``seed`` (which write is live),
    ``fields`` replace top-level fields."""
    idea = {"idea": "durable things", "main_type": "image-text", "type": "tips", "basis": "test"}
    return PostRecord.model_validate({
        "post_id": post_id, "user_id": user_id, "kind": "post", "platform": "rednote",
        "created_at": "2026-01-01T00:00:00+00:00", "seed": version,
        "title": f"Post {post_id} v{version} {text}", "body": f"Body of {post_id}. {text}",
        "hashtags": ["durable"], "links": [],
        "images": [{"file": "cover.png", "prompt": "a red square", "caption": "cover",
                    "kind": "card", "model": "test"}],
        "video": None, "storyboard": [], "media_note": "", "idea": idea,
        "ideation": {"subset": ["tips"], "ideas": [idea]}, "exemplars": [],
        "profile": {"text": "likes durable things", "version": "0", "config_hash": "",
                    "text_model": "scripted", "source": "profiles"},
        "reflection": {"objective": "relevance", "clip_measured": False, "best_round": 0,
                       "best": {"relevance": 0.5, "clip": None, "objective": 0.5},
                       "rounds": [{"round": 0, "relevance": 0.5, "clip": None, "objective": 0.5,
                                   "best_so_far": True, "seconds": 0.0}]},
        "drafts": [], "fallbacks": [], "models": {"text": {"model": "scripted"}},
        "config_hash": "", "seconds_by_stage": {}, "tokens_by_stage": {}, "seconds": 0.0,
        **fields})
