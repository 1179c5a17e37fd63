"""Multi-view evaluation over the configured suites -> <workdir>/eval/report.json and the paper's table.

Each suite (config.eval.suites) names a list, the tasks it scores (action, scene) and its group (seen,
unseen). Softmax probabilities are averaged over a video's views (2 temporal x 3 spatial by default)
on device; per-video probabilities are gathered to every host, padded clips dropped, and scored.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from devias_jax import report as report_lib
from devias_jax import sharding
from devias_jax import suites as suites_lib
from devias_jax.data import failures, sources, streams  # TensorFlow itself loads only when a stream starts
from devias_jax.prefetch import DevicePrefetcher
from devias_jax.preprocess import normalize_uint8
from devias_jax.weights import load_replicated

PROB_OUTPUTS = {"action_logits": "action_probs", "scene_logits": "scene_probs"}


def make_predict_fn(graphdef: nnx.GraphDef, feature_names: Iterable[str] = (), official_action: bool = False
                    ) -> Callable:
    """jit: (params, clips uint8 (b, V, T, H, W, 3)) -> per-video softmax probabilities averaged over
    the V views, plus any named outputs (e.g. 'action_feature') averaged likewise. `official_action`
    (DEVIAS): the action probabilities are the softmax over the action slot's whole unified vector
    (C_a + C_s; a scene entry may win the top-1, which then counts as wrong), as the authors score,
    instead of over the C_a action logits."""
    feature_names = tuple(feature_names)

    @jax.jit
    def predict(params, clips):
        batch, views = clips.shape[:2]
        x = normalize_uint8(clips.reshape((batch * views,) + clips.shape[2:]))  # (b*V, T, H, W, 3)
        outputs = nnx.merge(graphdef, params)(x, train=False)
        result = {}
        if official_action and "action_slot_logits" in outputs:
            outputs = {**outputs, "action_logits": outputs["action_slot_logits"]}
        for name, prob_name in PROB_OUTPUTS.items():
            if name in outputs:
                probs = jax.nn.softmax(outputs[name].astype(jnp.float32), axis=-1)
                result[prob_name] = probs.reshape(batch, views, -1).mean(axis=1)  # (b, C)
        for name in feature_names:
            value = outputs[name].astype(jnp.float32)
            result[name] = value.reshape((batch, views) + value.shape[1:]).mean(axis=1)
        return result

    return predict


def _gather(tree: Any) -> Any:
    """Device arrays sharded over the batch -> full numpy arrays on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def run_predictions(predict: Callable, params: Any, batches: Iterable[Mapping[str, np.ndarray]], mesh: Mesh,
                    num_batches: int | None = None, label: str = "", timeout_s: float | None = None,
                    describe_stuck: Callable[[], str] | None = None) -> dict[str, np.ndarray]:
    """Runs `predict` over eval batches; returns per-video arrays in list order (padding removed):
    the predict outputs plus 'action', 'scene', 'index'. With `timeout_s`, batches are read and placed
    in a background thread and a batch that takes longer stops the run naming the file(s) being read."""
    collected: dict[str, list[np.ndarray]] = {}
    show = jax.process_index() == 0 and label
    start = time.perf_counter()
    placed: Iterable[Mapping[str, Any]]
    if timeout_s is not None:
        placed = DevicePrefetcher(iter(batches), place=lambda batch: sharding.to_global(batch, mesh),
                                  timeout_s=timeout_s, describe_stuck=describe_stuck, what="evaluation")
    else:
        placed = (sharding.to_global(batch, mesh) for batch in batches)
    try:
        for i, arrays in enumerate(placed):
            _predict_batch(predict, params, arrays, collected)
            if show:
                total = f"/{num_batches}" if num_batches else ""
                print(f"\r  eval {label}: batch {i + 1}{total} ({time.perf_counter() - start:.0f}s)", end="",
                      file=sys.stderr, flush=True)
    finally:
        if isinstance(placed, DevicePrefetcher):
            placed.close()
    if show:
        print(file=sys.stderr)
    if not collected:
        raise ValueError(f"evaluation list for {label or 'a suite'} produced no batches")
    merged = {name: np.concatenate(parts) for name, parts in collected.items()}
    valid = merged.pop("valid").astype(bool)
    order = np.argsort(merged["index"][valid], kind="stable")
    return {name: value[valid][order] for name, value in merged.items()}


def _predict_batch(predict: Callable, params: Any, arrays: Mapping[str, Any],
                   collected: dict[str, list[np.ndarray]]) -> None:
    """One placed batch through `predict`; appends its host arrays (outputs and labels) to `collected`."""
    outputs = predict(params, arrays["clips"])
    host = _gather({**outputs, "action": arrays["action"], "scene": arrays["scene"],
                    "index": arrays["index"], "valid": arrays["valid"]})
    for name, value in host.items():
        collected.setdefault(name, []).append(value)


def make_teacher_fn(graphdef: nnx.GraphDef) -> Callable:
    """jit: (teacher params, clips uint8 (b, V, T, H, W, 3)) -> the scene teacher's label per video two
    ways: 'teacher_mean' = argmax of the softmax averaged over the V views (ours), 'teacher_last' =
    argmax of the last view (the authors' merge keeps the label of the last view read)."""
    @jax.jit
    def label(params, clips):
        batch, views = clips.shape[:2]
        x = normalize_uint8(clips.reshape((batch * views,) + clips.shape[2:]))
        logits = nnx.merge(graphdef, params)(x, train=False)["scene_logits"].astype(jnp.float32)
        probs = jax.nn.softmax(logits, axis=-1).reshape(batch, views, -1)
        return {"teacher_mean": probs.mean(axis=1).argmax(-1).astype(jnp.int32),
                "teacher_last": probs[:, -1].argmax(-1).astype(jnp.int32)}

    return label


def _with_teacher(predict: Callable, teacher: Callable) -> Callable:
    """(model params, teacher params), clips -> the model's outputs plus the teacher's scene labels."""
    def both(params, clips):
        return {**predict(params[0], clips), **teacher(params[1], clips)}

    return both


def load_teacher(config: Any, mesh: Mesh) -> tuple[nnx.GraphDef, Any]:
    """The frozen scene teacher (config.loss.teacher) for suites with scene_labels='teacher'."""
    teacher = config.loss.get("teacher")
    checkpoint = teacher.get("checkpoint", "") if teacher is not None else ""
    if not checkpoint:
        raise ValueError("an evaluation suite takes its scene labels from the scene teacher (scene_labels='teacher'): "
                         "set config.loss.teacher.checkpoint (a converted directory, trainer workdir or PyTorch file)")
    graphdef, params, loaded = load_replicated(teacher, checkpoint, mesh, seed=config.seed)
    if jax.process_index() == 0:
        print(f"scene teacher for composited suites {checkpoint}: {loaded.summary()}", flush=True)
    return graphdef, params


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


def evaluate_suites(config: Any, graphdef: nnx.GraphDef, params: Any, mesh: Mesh, workdir: str,
                    step: int | None = None, extra: Mapping[str, Any] | None = None,
                    teacher: tuple[nnx.GraphDef, Any] | None = None) -> dict[str, Any]:
    """Scores every suite in config.eval.suites, writes <workdir>/eval/report.json (with `extra` merged
    in) and prints the table. Videos that cannot be decoded are left out of the scores, counted per suite
    ('videos_unreadable') and listed in <workdir>/eval/bad_videos.txt. A HAT suite scores each split and
    reports their mean; a suite with scene_labels='teacher' is scored against the scene teacher's
    labels of the same views (`teacher`, loaded from config.loss.teacher when not given)."""
    official = bool(config.loss.get("official_compat", False))
    predict = make_predict_fn(graphdef, official_action=official)
    chosen = suites_lib.parse(config)
    table_selection, table = suites_lib.tables(config)
    opened = {name: sources.for_suite(config, suite) for name, suite in chosen.items()}  # bad lists fail first
    teacher_fn = None
    if any(suite.scene_labels == "teacher" and "scene" in suite.tasks for suite in chosen.values()):
        teacher_graphdef, teacher_params = teacher or load_teacher(config, mesh)
        teacher_fn = _with_teacher(predict, make_teacher_fn(teacher_graphdef))
    suites, bad = {}, {}
    for name, suite in chosen.items():
        use_teacher = teacher_fn is not None and suite.scene_labels == "teacher" and "scene" in suite.tasks
        per_split = {}
        for split, source in opened[name]:
            label = f"{name}/{split}" if split else name
            with streams.eval_batches(config, suite.list, batch_size=config.eval.batch_size // jax.process_count(),
                                      process_index=jax.process_index(), process_count=jax.process_count(),
                                      source=source) as batches:
                results = run_predictions(teacher_fn if use_teacher else predict,
                                          (params, teacher_params) if use_teacher else params, batches, mesh,
                                          len(batches), label=label, timeout_s=config.data.batch_timeout_s,
                                          describe_stuck=batches.describe_stuck)
                split_bad = batches.failures.bad_files()
            scene = results["teacher_last" if official else "teacher_mean"] if use_teacher else results["scene"]
            scores = report_lib.suite_scores(suite.tasks, results.get("action_probs"), results.get("scene_probs"),
                                             results["action"], scene)
            scores["videos_unreadable"] = int(sharding.sum_over_processes([len(split_bad)])[0])
            per_split[split] = scores
            bad.update({path: f"[{label}] {reason}" for path, reason in split_bad.items()})
            if scores["videos_unreadable"] and jax.process_index() == 0:
                print(f"  {label}: {scores['videos_unreadable']} video(s) could not be decoded and are left out "
                      f"of its scores (eval/bad_videos.txt)", flush=True)
        scores = per_split[""] if list(per_split) == [""] else _mean_scores(per_split)
        suites[name] = {"group": suite.group, "tasks": list(suite.tasks), "scores": scores}
    report = report_lib.build_report(suites, scene_topk=config.eval.scene_topk,
                                     tables={k: dict(v) for k, v in table_selection.items()}, table=table)
    report.update(extra or {})
    if step is not None:
        report["step"] = int(step)
    process = jax.process_index()
    if bad:
        failures.write_bad_files(
            failures.bad_list_path(os.path.join(workdir, "eval"), process), bad, f"{len(bad)} evaluation video(s) could not be decoded and were left out of their suite's scores")
    if process == 0:
        report_lib.write_report(report, os.path.join(workdir, "eval", "report.json"))
        print(report_lib.format_suites(report))
        for name in report.get("tables", {}) or [None]:
            shown = report if name is None else {**report, **report["tables"][name]}
            title = config.method if name is None else f"{config.method} ({name} table)"
            print(report_lib.format_table({title: shown}))
    return report


def evaluate_checkpoint(config: Any, workdir: str) -> dict[str, Any]:
    """--mode=eval: the latest checkpoint in `workdir` (else config.init_from) on every suite."""
    sharding.initialize_distributed(config.distributed)
    mesh = sharding.make_mesh(config.sharding.fsdp, num_devices=config.sharding.num_devices)
    source = workdir if ckpt_source_exists(workdir) else config.init_from
    if not source:
        raise FileNotFoundError(f"no checkpoint in {workdir} and no config.init_from to evaluate")
    graphdef, params, report = load_replicated(config.model, source, mesh, seed=config.seed)
    print(f"evaluating {source}: {report.summary()}", flush=True)
    return evaluate_suites(config, graphdef, params, mesh, workdir)


def ckpt_source_exists(workdir: str) -> bool:
    from devias_jax.checkpoint import find_training_checkpoint

    return os.path.isdir(workdir) and find_training_checkpoint(workdir) is not None
