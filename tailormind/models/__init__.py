"""Model roles (text, embed, describe, clip, image, video) behind one seam.

Nothing outside this package imports a model library. Ask the registry for a role::

    from tailormind.models.registry import load_role
    text = load_role("text", settings)          # a TextModel
    answers = text.complete_json([[{"role": "user", "content": "..."}]], schema)

Interfaces: :mod:`tailormind.models.roles` (inputs and outputs: :mod:`tailormind.models.types`);
backends are registered in :mod:`tailormind.core.backends` and chosen by
``settings.models.<role>``.
"""
