"""every suite of config.eval.suites scored on multi-view predictions -> <workdir>/eval/report.json

The paper's evaluation. Each suite names a list, the tasks it scores (action, scene) and its group
(seen, unseen). Softmax probabilities are averaged over a video's views (2 temporal x 3 spatial by
default) on device; per-video probabilities are gathered to every host, padded clips dropped, and
scored. run() also prints the paper's table.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from devias_jax import predict as predict_lib
from devias_jax import report as report_lib
from devias_jax import sharding
from devias_jax import suites as suites_lib
from devias_jax import weights
from devias_jax.data import failures, hat, sources, streams  # TensorFlow itself loads only when a stream starts


def load_teacher(config: Any, mesh: Mesh) -> tuple[nnx.GraphDef, Any]:
    """The frozen scene teacher (config.loss.teacher) for suites with scene_labels='teacher'."""
    teacher = config.loss.get("teacher")
    checkpoint = teacher.get("checkpoint", "") if teacher is not None else ""
    if not checkpoint:
        raise ValueError("an evaluation suite takes its scene labels from the scene teacher (scene_labels='teacher'): "
                         "set config.loss.teacher.checkpoint (a converted directory, trainer workdir or PyTorch file)")
    graphdef, params, loaded = weights.load_params(teacher, checkpoint, mesh, seed=config.seed)
    if jax.process_index() == 0:
        print(f"scene teacher for composited suites {checkpoint}: {loaded.summary()}", flush=True)
    return graphdef, params


def open_suite(config: Any, suite: suites_lib.Suite) -> list[tuple[str, sources.DataSource]]:
    """The source(s) a suite reads, opened (a bad list fails here): [('', source)] for a list; one (split
    label, source) per split for HAT. With config.loss.official_compat, HAT views are the authors' random
    windows, one per (segment, crop) view."""
    if suite.kind != "hat":
        return [("", sources.get(config, suite.list, suite.root))]
    data, model = config.data, config.model
    root = os.path.join(data.root, suite.root) if suite.root else data.root
    splits = hat.split_files(os.path.join(data.root, suite.list))
    dataset = suite.dataset or hat.infer_dataset(root)
    labels = hat.load_labels(hat.labels_path_for(splits[0][1]))
    geometry = dict(num_frames=int(model.num_frames), frame_stride=int(data.frame_stride),
                    temporal_views=int(data.test_temporal_views), spatial_views=int(data.test_spatial_views))
    official_windows = bool(config.loss.get("official_compat", False))
    return [(label, sources.HatSource(path, root=root, dataset=dataset, labels=labels, **geometry,
                                      official_windows=official_windows, seed=int(config.seed),
                                      num_actions=int(model.num_actions)))
            for label, path in splits]


def open_suites(config: Any) -> dict[str, list[tuple[str, sources.DataSource]]]:
    """open_suite for every active suite of config.eval.suites, by name."""
    return {name: open_suite(config, suite) for name, suite in suites_lib.parse(config).items()}


def _mean_scores(per_split: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """A HAT suite's scores: the unweighted mean of its splits' (as the authors average them, although
    split sizes differ), the videos summed, each split kept under 'splits'."""
    first = next(iter(per_split.values()))
    scores: dict[str, Any] = {key: float(np.mean([s[key] for s in per_split.values()])) for key in first
                              if key not in ("videos", "videos_unreadable")}
    scores["videos"] = float(sum(s["videos"] for s in per_split.values()))
    scores["videos_unreadable"] = int(sum(s["videos_unreadable"] for s in per_split.values()))
    scores["splits"] = {name: dict(s) for name, s in per_split.items()}
    return scores


class Evaluator:
    """Scores config.eval.suites. Lists are opened (and bad ones fail), the scene teacher is loaded and
    the predict functions are jitted once here; every run(params) reuses their compilations.

    A HAT suite scores each split and reports their mean; a suite with scene_labels='teacher' is scored
    against the scene teacher's labels of the same views (`teacher`: (graphdef, params), loaded from
    config.loss.teacher when not given; `source`: the checkpoint the params come from, recorded in the
    report). Videos that cannot be decoded are left out of the scores,
    counted per suite ('videos_unreadable') and listed in <workdir>/eval/bad_videos.txt."""

    def __init__(self, config: Any, graphdef: nnx.GraphDef, mesh: Mesh, workdir: str, *, source: str = "",
                 teacher: tuple[nnx.GraphDef, Any] | None = None):
        self.config, self.mesh, self.workdir, self.source = config, mesh, workdir, source
        self.official = bool(config.loss.get("official_compat", False))
        self.predict = predict_lib.make_predict_fn(graphdef, official_action=self.official)
        self.suites = suites_lib.parse(config)
        self.table_selection, self.table = suites_lib.tables(config)
        self.opened = open_suites(config)  # each suite's list opened once, here: a bad one fails first
        self.predict_with_teacher, self.teacher_params = None, None
        if any(self._uses_teacher(suite) for suite in self.suites.values()):
            teacher_graphdef, self.teacher_params = teacher or load_teacher(config, mesh)
            self.predict_with_teacher = predict_lib.with_teacher(self.predict,
                                                                 predict_lib.make_teacher_fn(teacher_graphdef))

    @staticmethod
    def _uses_teacher(suite: Any) -> bool:
        return suite.scene_labels == "teacher" and "scene" in suite.tasks

    def _score_split(self, name: str, suite: Any, split: str, source: Any, params: Any) -> tuple[dict, dict]:
        """(scores, {bad file: reason}) of one list (one HAT split)."""
        config = self.config
        label = f"{name}/{split}" if split else name
        use_teacher = self._uses_teacher(suite)
        with streams.eval_batches(config, suite.list, batch_size=config.eval.batch_size // jax.process_count(),
                                  process_index=jax.process_index(), process_count=jax.process_count(),
                                  source=source) as batches:
            results = predict_lib.run_predictions(
                self.predict_with_teacher if use_teacher else self.predict,
                (params, self.teacher_params) if use_teacher else params, batches, self.mesh, len(batches),
                label=label, timeout_s=config.data.batch_timeout_s, describe_stuck=batches.describe_stuck)
            bad = batches.failures.bad_files()
        scene = results["teacher_last" if self.official else "teacher_mean"] if use_teacher else results["scene"]
        scores = report_lib.suite_scores(suite.tasks, results.get("action_probs"), results.get("scene_probs"),
                                         results["action"], scene)
        scores["videos_unreadable"] = int(sharding.sum_over_processes([len(bad)])[0])
        if scores["videos_unreadable"] and jax.process_index() == 0:
            print(f"  {label}: {scores['videos_unreadable']} video(s) could not be decoded and are left out "
                  f"of its scores (eval/bad_videos.txt)", flush=True)
        return scores, {path: f"[{label}] {reason}" for path, reason in bad.items()}

    def run(self, params: Any, *, step: int | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Scores every suite, writes <workdir>/eval/report.json (with `extra` merged in), prints the table."""
        config = self.config
        suites, bad = {}, {}
        for name, suite in self.suites.items():
            per_split = {}
            for split, source in self.opened[name]:
                per_split[split], split_bad = self._score_split(name, suite, split, source, params)
                bad.update(split_bad)
            scores = per_split[""] if list(per_split) == [""] else _mean_scores(per_split)
            suites[name] = {"group": suite.group, "tasks": list(suite.tasks), "scores": scores}
        report = report_lib.build_report(suites, scene_topk=config.eval.scene_topk,
                                         tables={k: dict(v) for k, v in self.table_selection.items()}, table=self.table)
        report.update(extra or {})
        if self.source:
            report["checkpoint"] = self.source
        if step is not None:
            report["step"] = int(step)
        process = jax.process_index()
        if bad:
            failures.write_bad_files(failures.bad_list_path(os.path.join(self.workdir, "eval"), process), bad,
                                     f"{len(bad)} evaluation video(s) could not be decoded and were left out of "
                                     "their suite's scores")
        if process == 0:
            report_lib.write_report(report, os.path.join(self.workdir, "eval", "report.json"))
            print(report_lib.format_suites(report))
            for name in report.get("tables", {}) or [None]:
                shown = report if name is None else {**report, **report["tables"][name]}
                title = config.method if name is None else f"{config.method} ({name} table)"
                print(report_lib.format_table({title: shown}))
        return report
