"""Predictions over evaluation batches: the jitted per-video forward (softmax probabilities and named
outputs averaged over a video's views, on device), the scene teacher's labels of the same views, and
the loop that runs them over a stream and gathers per-video host arrays in list order.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from devias_jax import sharding
from devias_jax.prefetch import DevicePrefetcher
from devias_jax.preprocess import normalize_uint8

PROB_OUTPUTS = {"action_logits": "action_probs", "scene_logits": "scene_probs"}
# Outputs computed on device from the model's own outputs (only the (B, D) result leaves the device):
# name -> (the output it is computed from, how). 'gap': global average pooling of the backbone tokens.
DERIVED_OUTPUTS = {"gap": ("tokens", lambda tokens: tokens.mean(axis=1))}  # (B, N, D) -> (B, D)


def with_derived(outputs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The model's outputs plus every DERIVED_OUTPUTS entry whose source output it has."""
    outputs = dict(outputs)
    for name, (source, derive) in DERIVED_OUTPUTS.items():
        if source in outputs and name not in outputs:
            outputs[name] = derive(outputs[source])
    return outputs


def make_predict_fn(graphdef: nnx.GraphDef, feature_names: Iterable[str] = (), official_action: bool = False
                    ) -> Callable:
    """jit: (params, clips uint8 (b, V, T, H, W, 3)) -> per-video softmax probabilities averaged over
    the V views, plus any named outputs (e.g. 'action_feature', or a DERIVED_OUTPUTS name such as 'gap')
    averaged likewise. `official_action`
    (DEVIAS): the action probabilities are the softmax over the action slot's whole unified vector
    (C_a + C_s; a scene entry may win the top-1, which then counts as wrong), as the authors score,
    instead of over the C_a action logits."""
    feature_names = tuple(feature_names)

    @jax.jit
    def predict(params, clips):
        batch, views = clips.shape[:2]
        x = normalize_uint8(clips.reshape((batch * views,) + clips.shape[2:]))  # (b*V, T, H, W, 3)
        outputs = nnx.merge(graphdef, params)(x, train=False)
        if feature_names:
            outputs = with_derived(outputs)
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


def with_teacher(predict: Callable, teacher: Callable) -> Callable:
    """(model params, teacher params), clips -> the model's outputs plus the teacher's scene labels."""
    def both(params, clips):
        return {**predict(params[0], clips), **teacher(params[1], clips)}

    return both


