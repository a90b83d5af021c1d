"""Report sections computed from the workspace beside the scores: the human evaluation
(:mod:`tailormind.bench.human`), the sensitivity sweep
(:mod:`tailormind.bench.sensitivity`, from :mod:`tailormind.bench.sweep`) and the
cost study (:mod:`tailormind.bench.cost`).

Each section is a module with

- ``KEY``: its key in ``report.json`` (``None`` when it has nothing to show);
- ``build(workspace, settings, report) -> dict | None``: the section's numbers, from the
  workspace and the report's other numbers (no model is called, so ``bench report`` can refresh
  a report in seconds);
- ``markdown(section, report) -> list[str]``: its Markdown lines;
- ``figures(section, report) -> dict[str, bytes | None]``: its PNG plots (name -> bytes);
- ``html/report_<KEY>.html.j2``: its HTML, included by ``report.html.j2`` with ``report`` and
  ``plots`` (name -> data URI) in scope;
- optionally ``TEMPLATE_GLOBALS``: functions its HTML include calls (name -> function).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from tailormind.config import Settings
from tailormind.data.workspace import Workspace

#: Section modules, in report order.
SECTION_MODULES = ("tailormind.bench.human", "tailormind.bench.cost",
                   "tailormind.bench.sensitivity")


def sections() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SECTION_MODULES]


def attach(workspace: Workspace, settings: Settings, report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with every section rebuilt from the workspace (in place; also returned)."""
    for section in sections():
        report[section.KEY] = section.build(workspace, settings, report)
    return report


def markdown(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for section in sections():
        if report.get(section.KEY):
            lines += section.markdown(report[section.KEY], report)
    return lines


def figures(report: dict[str, Any]) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for section in sections():
        if report.get(section.KEY):
            found.update(section.figures(report[section.KEY], report))
    return found


def template_globals() -> dict[str, Any]:
    """Every section's ``TEMPLATE_GLOBALS``, for the HTML report's Jinja environment."""
    found: dict[str, Any] = {}
    for section in sections():
        found.update(getattr(section, "TEMPLATE_GLOBALS", {}))
    return found


def html_templates() -> list[str]:
    """The include files of the sections, in report order."""
    return [f"report_{section.KEY}.html.j2" for section in sections()]
