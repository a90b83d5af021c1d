"""TailorMind: preference-aligned multimodal content generation from interaction logs.

Stages live in sub-packages: ``data`` (workspace, importers, split), ``cf``, ``models``,
``profiling``, ``generation``, ``bench`` and ``serve``. Every stage reads and writes tables in one
workspace directory, see :mod:`tailormind.data.workspace`.
"""

__version__ = "0.1.0"
