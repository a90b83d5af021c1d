"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

* ``refinement_curve``: mean validation rank of the positive (left axis, lower is better) and
  test Recall@K (right axis) of the accepted profile after each textual-gradient iteration.
* ``relevance_by_round``: mean cosine relevance to the user's history of the version kept after
  each cohesion-reflection round (a post that stopped early keeps its value), one line per method.
* ``dimension_bars``: one panel per metric, a bar per method with its bootstrap interval.
* ``sweep_curves``: the sensitivity sweep of one parameter, one panel per metric, the mean with
  its interval at each value.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def refinement_curve(curve: list[dict[str, Any]]) -> bytes | None:
    if not curve:
        return None
    fig, left = plt.subplots(figsize=(6, 3.6))
    steps = [c["iteration"] for c in curve]
    left.plot(steps, [c["mean_valid_rank"] for c in curve], "o-", color="tab:red",
              label="mean validation rank")
    left.set_xlabel("refinement iteration (0 = initial profile)")
    left.set_ylabel("mean validation rank (lower is better)", color="tab:red")
    left.set_xticks(steps)
    right = left.twinx()
    for key, style in (("recall@10", "s-"), ("recall@20", "^-")):
        right.plot(steps, [c["test"][key] for c in curve], style, label=f"test {key}")
    right.set_ylabel("test recall")
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, fontsize=8, loc="best")
    left.set_title("Textual-gradient refinement")
    return _png(fig)


def relevance_by_round(series: dict[str, list[float | None]]) -> bytes | None:
    drawn = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, values in drawn.items():
        ax.plot(range(len(values)), [math.nan if v is None else v for v in values], "o-",
                label=label)
    ax.set_xlabel("reflection round (0 = first draft)")
    ax.set_ylabel("mean relevance of the kept version (cos)")
    ax.set_xticks(range(max(len(v) for v in drawn.values())))
    ax.legend(fontsize=8)
    ax.set_title("Relevance per cohesion-reflection round")
    return _png(fig)


def dimension_bars(panels: list[dict[str, Any]], confidence: float = 0.95) -> bytes | None:
    """``panels``: ``{"title", "bars": [{"label", "mean", "low", "high"}]}`` (None mean: no bar)."""
    panels = [p for p in panels if any(b["mean"] is not None for b in p["bars"])]
    if not panels:
        return None
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        bars = [b for b in panel["bars"] if b["mean"] is not None]
        means = [b["mean"] for b in bars]
        errors = [[m - (b["low"] if b["low"] is not None else m) for m, b in zip(means, bars,
                                                                                  strict=True)],
                  [(b["high"] if b["high"] is not None else m) - m for m, b in zip(means, bars,
                                                                                    strict=True)]]
        ax.bar(range(len(bars)), means, yerr=errors, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(bars)), [b["label"] for b in bars], rotation=35, ha="right",
                      fontsize=7)
        ax.set_title(panel["title"], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Per-dimension means with {confidence:.0%} bootstrap intervals", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def sweep_curves(parameter: str, values: list[Any], labels: list[str],
                 panels: list[dict[str, Any]], configured: int | None = None,
                 confidence: float = 0.95) -> bytes | None:
    """The sensitivity sweep of one parameter: one panel per metric (``{"title", "points":
    [{"mean", "low", "high"}]}``, a point per value), the value on x (numbers to scale, other
    values evenly spaced), the mean with its bootstrap interval as error bars; the configured
    value (index ``configured``) is a dotted line."""
    panels = [p for p in panels if any(pt["mean"] is not None for pt in p["points"])]
    if not panels:
        return None
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        shown = [(x, p) for x, p in zip(xs, panel["points"], strict=True) if p["mean"] is not None]
        means = [p["mean"] for _, p in shown]
        errors = [[p["mean"] - (p["low"] if p["low"] is not None else p["mean"]) for _, p in shown],
                  [(p["high"] if p["high"] is not None else p["mean"]) - p["mean"]
                   for _, p in shown]]
        ax.errorbar([x for x, _ in shown], means, yerr=errors, fmt="o-", capsize=3,
                    color="tab:blue")
        if configured is not None:
            ax.axvline(xs[configured], linestyle=":", color="grey", label="configured")
            if ax is axes.flat[0]:
                ax.legend(fontsize=7)
        ax.set_xticks(xs, labels, fontsize=7)
        ax.set_xlabel(parameter, fontsize=7)
        ax.set_title(panel["title"], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Sensitivity to {parameter}: means with {confidence:.0%} bootstrap intervals",
                 fontsize=10)
    fig.tight_layout()
    return _png(fig)
