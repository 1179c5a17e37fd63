"""PNG figures: training curves; the analysis plots (devias_jax/analysis/commands.py, scripts/visualize.py):
per-slot attention maps over sampled frames, 2-D embeddings of action vs scene features, slot-role
frequency."""

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


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def upsample_bilinear(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) -> (..., H, W) bilinear, pixel centres aligned (as image resizing does)."""
    grid = np.asarray(grid, np.float32)
    h, w = grid.shape[-2:]
    out_h, out_w = size

    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, fy = axis(h, out_h)
    x0, x1, fx = axis(w, out_w)
    rows = grid[..., y0, :] * (1 - fy)[:, None] + grid[..., y1, :] * fy[:, None]  # (..., H, w)
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def attention_frames(attention: np.ndarray, grid: tuple[int, int, int], tubelet_size: int, num_frames: int,
                     size: tuple[int, int]) -> np.ndarray:
    """One slot's attention over the tokens (N,) in (t, h, w) order -> per-frame maps (num_frames, H, W):
    each frame takes its tubelet's map, upsampled from the token grid."""
    t, h, w = grid
    maps = np.asarray(attention, np.float32).reshape(t, h, w)
    frame_maps = maps[np.minimum(np.arange(num_frames) // tubelet_size, t - 1)]  # (T, h, w)
    return upsample_bilinear(frame_maps, size)


def plot_attention_maps(frames: np.ndarray, attention: np.ndarray, grid: tuple[int, int, int],
                        tubelet_size: int, action_slot: int, scene_slot: int, path: str, *,
                        max_frames: int = 8, title: str = "") -> str:
    """Rows: sampled input frames, the action slot's attention, the scene slot's attention (overlaid,
    each slot's maps scaled to [0, 1] by its minimum and maximum over the clip; a flat map shows as 0).
    frames uint8 (T, H, W, 3); attention (K, N) over tokens in (t, h, w) order."""
    frames = np.asarray(frames)
    num_frames, height, width = frames.shape[:3]
    shown = np.unique(np.linspace(0, num_frames - 1, min(max_frames, num_frames)).round().astype(int))
    rows = [("input", None)]
    rows.append((f"action slot {action_slot}", attention_frames(attention[action_slot], grid, tubelet_size,
                                                                num_frames, (height, width))))
    rows.append((f"scene slot {scene_slot}", attention_frames(attention[scene_slot], grid, tubelet_size,
                                                              num_frames, (height, width))))
    fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.8 * len(shown), 1.9 * len(rows) + 0.4),
                             squeeze=False)
    for r, (name, maps) in enumerate(rows):
        if maps is not None:
            low, span = float(maps.min()), float(maps.max() - maps.min())
            maps = (maps - low) / span if span > 1e-8 else np.zeros_like(maps)
        for c, f in enumerate(shown):
            ax = axes[r, c]
            ax.imshow(frames[f])
            if maps is not None:
                ax.imshow(maps[f], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _scatter(ax, points: np.ndarray, labels: np.ndarray, title: str) -> None:
    labels = np.asarray(labels)
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "nipy_spectral")
    for i, label in enumerate(classes):
        chosen = labels == label
        colour = cmap(i % cmap.N) if len(classes) <= 20 else cmap(i / max(len(classes) - 1, 1))
        ax.scatter(points[chosen, 0], points[chosen, 1], s=12, color=colour,
                   label="unknown" if label < 0 else str(label), alpha=0.85, linewidths=0)
    if len(classes) <= 20:
        ax.legend(fontsize=6, markerscale=1.2, loc="best", ncol=2 if len(classes) > 10 else 1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_embeddings(embeddings: Mapping[str, np.ndarray], action_labels: np.ndarray, scene_labels: np.ndarray,
                    path: str, *, method: str = "umap", title: str = "") -> str:
    """One row per feature ({name: (N, 2)}), coloured by action label (left) and scene label (right):
    a disentangled action feature clusters by action, not by scene, and the scene feature the reverse."""
    fig, axes = plt.subplots(len(embeddings), 2, figsize=(9, 4.2 * len(embeddings)), squeeze=False)
    for row, (name, points) in enumerate(embeddings.items()):
        points = np.asarray(points)
        _scatter(axes[row, 0], points, action_labels, f"{name} ({method}), by action")
        _scatter(axes[row, 1], points, scene_labels, f"{name} ({method}), by scene")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_slot_frequency(frequency: Mapping[str, object], path: str, *, title: str = "") -> str:
    """Grouped bars: the share (%) of clip views whose action / scene slot is each slot index
    (frequency: analysis.slot_frequency)."""
    num_slots = int(frequency["num_slots"])
    index = np.arange(num_slots)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.9 * num_slots), 3.2))
    for offset, role in ((-0.2, "action"), (0.2, "scene")):
        shares = 100.0 * np.asarray(frequency[f"{role}_fraction"])
        bars = ax.bar(index + offset, shares, width=0.4, label=f"{role} slot")
        for bar, share in zip(bars, shares):
            ax.text(bar.get_x() + bar.get_width() / 2, share + 1, f"{share:.0f}", ha="center", fontsize=7)
    ax.set_xticks(index)
    ax.set_xlabel("slot index")
    ax.set_ylabel("% of clip views")
    ax.set_ylim(0, 110)
    ax.set_title((title + ": " if title else "") + f"slot roles over {frequency['views']} views", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
