"""The paper's evaluation summary: top-1 action and top-5 scene on seen and unseen combinations, and
their harmonic mean (REFERENCE §9), from per-video class probabilities. Pure numpy."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

HEADLINE = ("action_seen", "action_unseen", "scene_seen", "scene_unseen")


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the k highest probabilities (rows with label < 0 skipped)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    keep = labels >= 0
    if not keep.any():
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argsort(-probs[keep], axis=1, kind="stable")[:, :k]
    return float(100.0 * np.mean(np.any(top == labels[keep, None], axis=1)))


def harmonic_mean(values: Sequence[float]) -> float:
    values = [float(v) for v in values]
    if any(not np.isfinite(v) for v in values):
        return float("nan")
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def suite_scores(tasks: Sequence[str], action_probs: np.ndarray | None, scene_probs: np.ndarray | None,
                 action_labels: np.ndarray, scene_labels: np.ndarray) -> dict[str, float]:
    """Top-1 / top-5 for the tasks a suite scores, in percent, plus the video count. A task the model
    has no output for (the scene of an action-only ViT) scores NaN: shown as '-', never as a number."""
    scores: dict[str, float] = {"videos": float(len(action_labels))}
    for task, probs, labels in (("action", action_probs, action_labels), ("scene", scene_probs, scene_labels)):
        if task not in tasks:
            continue
        if probs is None:
            scores[f"{task}_top1"] = scores[f"{task}_top5"] = float("nan")
            continue
        scores[f"{task}_top1"] = topk_accuracy(probs, labels, 1)
        scores[f"{task}_top5"] = topk_accuracy(probs, labels, 5)
    return scores


def _headline(suites: Mapping[str, Mapping[str, Any]], scene_topk: int,
              selection: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The four headline numbers and their H.M. Without `selection`, each averages the suites of its
    group that score its task; with it, each averages the suites it names (those that were run)."""
    def mean_over(headline: str, key: str) -> float:
        group = headline.rsplit("_", 1)[1]
        names = selection[headline] if selection is not None else [
            name for name, s in suites.items() if s["group"] == group]
        values = [suites[name]["scores"][key] for name in names if name in suites and key in suites[name]["scores"]]
        return float(np.mean(values)) if values else float("nan")

    out: dict[str, Any] = {}
    for group in ("seen", "unseen"):
        out[f"action_{group}"] = mean_over(f"action_{group}", "action_top1")
        out[f"action_{group}_top5"] = mean_over(f"action_{group}", "action_top5")
        out[f"scene_{group}_top1"] = mean_over(f"scene_{group}", "scene_top1")
        out[f"scene_{group}_top5"] = mean_over(f"scene_{group}", "scene_top5")
        out[f"scene_{group}"] = out[f"scene_{group}_top{scene_topk}"]
    out["harmonic_mean"] = harmonic_mean([out[k] for k in HEADLINE])
    if selection is not None:
        missing = sorted({name for names in selection.values() for name in names} - set(suites))
        if missing:
            out["suites_not_run"] = missing
    return out


def build_report(suites: Mapping[str, Mapping[str, Any]], scene_topk: int = 5,
                 tables: Mapping[str, Mapping[str, Sequence[str]]] | None = None, table: str = "") -> dict[str, Any]:
    """suites: name -> {'group': 'seen'|'unseen', 'tasks': [...], 'scores': suite_scores(...)}.

    Seen / unseen numbers are means over suites (the paper averages its unseen test sets): by default
    the suites of that group scoring that task; with `tables` (name -> headline -> suite names, e.g. the
    paper's main and supplement compositions) each table's own suites, every table under
    report['tables'] and `table` (default: the first) as the headline. Action uses top-1; scene uses
    top-`scene_topk` (5 in the paper, where C_s = 365; 1 makes sense with few scene classes); both
    scene top-1 and top-5 are reported.
    """
    if scene_topk not in (1, 5):
        raise ValueError(f"scene_topk={scene_topk}; expected 1 or 5")
    report: dict[str, Any] = {}
    if tables:
        table = table or next(iter(tables))
        report["tables"] = {name: _headline(suites, scene_topk, selection) for name, selection in tables.items()}
        report.update({k: v for k, v in report["tables"][table].items() if k != "suites_not_run"})
        report["table"] = table
    else:
        report.update(_headline(suites, scene_topk))
    report["scene_topk"] = scene_topk
    report["suites"] = {name: {"group": s["group"], "tasks": list(s["tasks"]), **s["scores"]}
                        for name, s in suites.items()}
    return report


def _cell(value: float) -> str:
    return "  -  " if not np.isfinite(value) else f"{value:5.1f}"


def format_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Rows = methods; columns as the paper's tables: action top-1 seen/unseen, scene top-k
    seen/unseen, H.M."""
    name_width = max([len("method")] + [len(n) for n in reports])
    topk = next(iter(reports.values())).get("scene_topk", 5) if reports else 5
    head = (f"{'method':<{name_width}} | Action top-1    | Scene top-{topk}     | H.M.\n"
            f"{'':<{name_width}} | seen   unseen   | seen   unseen   |")
    lines = [head, "-" * len(head.splitlines()[0])]
    for name, report in reports.items():
        lines.append(f"{name:<{name_width}} | {_cell(report['action_seen'])}  {_cell(report['action_unseen'])}   | "
                     f"{_cell(report['scene_seen'])}  {_cell(report['scene_unseen'])}   | "
                     f"{_cell(report['harmonic_mean'])}")
    return "\n".join(lines)


def format_suites(report: Mapping[str, Any]) -> str:
    lines = ["suite            group   videos  action@1 action@5  scene@1  scene@5"]
    ordered = sorted(report["suites"].items(), key=lambda item: (item[1]["group"] != "seen", item[0]))
    for name, s in ordered:
        lines.append(f"{name:<16} {s['group']:<7} {int(s['videos']):6d}  "
                     f"{_cell(s.get('action_top1', float('nan'))):>8} {_cell(s.get('action_top5', float('nan'))):>8} "
                     f"{_cell(s.get('scene_top1', float('nan'))):>8} {_cell(s.get('scene_top5', float('nan'))):>8}")
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(report, handle, indent=2, allow_nan=True)
    os.replace(tmp, path)  # a crash never leaves a half-written report
