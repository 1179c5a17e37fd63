"""PNG figures: training curves (more plots join with the analysis tools)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curves(records: Sequence[Mapping[str, float]], path: str) -> str | None:
    """One panel per training metric (loss terms, accuracy, lr) and one for eval headline numbers.

    records: the lines of metrics.jsonl ({'step', 'split', name: value}). Returns the path, or None
    when there is nothing to plot.
    """
    train = [r for r in records if r.get("split") == "train"]
    evals = [r for r in records if r.get("split") == "eval"]
    if not train:
        return None
    names = [k for k in train[-1] if k not in ("step", "split", "clips_per_second")]
    eval_names = [k for k in ("action_seen", "action_unseen", "scene_seen", "scene_unseen", "harmonic_mean")
                  if evals and k in evals[-1]]
    panels = len(names) + (1 if eval_names else 0)
    cols = min(4, panels)
    rows = int(np.ceil(panels / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    steps = [r["step"] for r in train]
    for ax, name in zip(axes.flat, names):
        ax.plot(steps, [r.get(name, np.nan) for r in train], lw=1.2)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if name.startswith("loss") and all(r.get(name, 1) > 0 for r in train):
            ax.set_yscale("log")
    if eval_names:
        ax = axes.flat[len(names)]
        eval_steps = [r["step"] for r in evals]
        for name in eval_names:
            ax.plot(eval_steps, [r.get(name, np.nan) for r in evals], marker="o", label=name)
        ax.set_title("evaluation (%)")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
