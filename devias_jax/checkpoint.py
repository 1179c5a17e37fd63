"""Checkpoints of the training state with orbax: interval saves, latest-N plus best-k retention, async
and atomic commits, sharded restore, and a save-and-exit on SIGTERM / preemption."""

from __future__ import annotations

import math
import os
import signal
import threading
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from devias_jax.converted import unflatten
from devias_jax.param_rules import flat_values

_policies = ocp.checkpoint_managers


class Checkpoints:
    """`<workdir>/checkpoints/<step>/{state,meta}`; `state` is any pytree of (sharded) arrays."""

    def __init__(self, directory: str, ckpt_config: Any, best_metric: str = "", best_mode: str = "max"):
        policies = [_policies.LatestN(n=ckpt_config.keep)]
        best_fn = None
        if best_metric and ckpt_config.keep_best > 0:
            if best_mode not in ("max", "min"):
                raise ValueError(f"best_mode={best_mode!r}; expected 'max' or 'min'")
            # Every save carries metrics (the manager tracks them from the first save on); a step that was
            # not evaluated ranks below every evaluated one.
            unranked = -math.inf if best_mode == "max" else math.inf
            best_fn = lambda metrics: float(metrics.get(best_metric, unranked))  # noqa: E731
            policies.append(_policies.BestN(get_metric_fn=best_fn, reverse=best_mode == "min",
                                            n=ckpt_config.keep_best, keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            best_fn=best_fn,  # only for best_step(); retention is the preservation policy
            best_mode=best_mode,
            preservation_policy=_policies.AnyPreservationPolicy(policies),
            enable_async_checkpointing=ckpt_config.async_save,
            cleanup_tmp_directories=True,
            create=True,
        )
        self.directory = os.path.abspath(directory)
        self.best_metric = best_metric
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def best_step(self) -> int | None:
        """The step with the best `best_metric` among the kept ones; None if none was evaluated."""
        if not self.best_metric:
            return None
        step = self.manager.best_step()
        metrics = self.manager.metrics(step) if step is not None else None
        return step if metrics and self.best_metric in metrics else None

    def save(self, step: int, state: Any, meta: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        """Starts an (async) save; orbax writes to a temporary directory and renames it when complete.
        `metrics` (scalars; the evaluation's best_metric when the step was evaluated) are stored with it."""
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(dict(meta))),
                          metrics={name: float(value) for name, value in (metrics or {}).items()}, force=True)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores `step` with the shardings and dtypes of `abstract_state` (ShapeDtypeStructs)."""
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                                      meta=ocp.args.JsonRestore()))
        return restored.state, dict(restored.meta)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) describing `tree`, the target for a sharded restore."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
                        tree)


class PreemptionWatch:
    """Turns SIGTERM (and Ctrl-C) into a request to save and exit cleanly at the next step boundary.

    With several processes, the decision comes from JAX's preemption sync point, so that every host
    stops at the same step.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self._requested = threading.Event()
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self._requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        logging.warning("signal %d received: saving a checkpoint and stopping at the next step", signum)
        self._requested.set()

    def should_stop(self, step: int, sync: bool = True) -> bool:
        """Single process: whether a signal arrived. Several processes: JAX's preemption sync point,
        and, when `sync` (the trainer passes it at log steps), whether any process got a signal, so
        that all of them stop at the same step."""
        if jax.process_count() == 1:
            return self._requested.is_set()
        try:
            if multihost_utils.reached_preemption_sync_point(step):
                return True
        except RuntimeError:  # preemption service not enabled on this cluster
            pass
        if not sync:
            return False
        flags = multihost_utils.process_allgather(np.array([self._requested.is_set()]))
        return bool(np.any(flags))

    def restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def find_training_checkpoint(path: str) -> str | None:
    """The `state` directory of a trainer checkpoint: `path` may be a workdir, its checkpoints/
    folder (latest step is taken) or one step folder. None if `path` is none of these."""
    path = os.path.abspath(path)
    if os.path.isdir(os.path.join(path, "state")):
        return os.path.join(path, "state")
    folder = os.path.join(path, "checkpoints") if os.path.isdir(os.path.join(path, "checkpoints")) else path
    steps = [int(name) for name in os.listdir(folder) if name.isdigit() and
             os.path.isdir(os.path.join(folder, name, "state"))] if os.path.isdir(folder) else []
    return os.path.join(folder, str(max(steps)), "state") if steps else None


def step_of(path: str) -> int | None:
    """The training step of a <workdir>/checkpoints/<step>[/state] path, else None."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if parts[-1] == "state":
        parts = parts[:-1]
    if len(parts) > 1 and parts[-1].isdigit() and parts[-2] == "checkpoints":
        return int(parts[-1])
    return None


def stored_param_shapes(state_dir: str) -> dict[str, jax.ShapeDtypeStruct]:
    """{flax path: shape and dtype} of the parameters a trainer checkpoint holds (read from its metadata)."""
    with ocp.PyTreeCheckpointer() as checkpointer:
        stored = checkpointer.metadata(state_dir).item_metadata["params"]
    return {path: jax.ShapeDtypeStruct(tuple(meta.shape), meta.dtype) for path, meta in flat_values(stored).items()}


def restore_stored_params(state_dir: str, targets: Mapping[str, jax.ShapeDtypeStruct]) -> dict[str, jax.Array]:
    """{flax path: array} for the parameters named in `targets` (shape, dtype and sharding each) and nothing
    else: the optimizer moments and unnamed parameters stay on disk (orbax partial restore), and each
    array is read straight onto its sharding, whatever mesh or process count the checkpoint was saved with."""
    if not targets:
        return {}
    item = {"params": unflatten(dict(targets))}
    with ocp.PyTreeCheckpointer() as checkpointer:
        restored = checkpointer.restore(state_dir, args=ocp.args.PyTreeRestore(
            item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True))
    return flat_values(restored["params"])


def load_training_params(state_dir: str) -> dict:
    """Every parameter (nested dict, string keys) of a trainer checkpoint as host numpy arrays, read onto
    one local device (the optimizer state is not read)."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    targets = {path: jax.ShapeDtypeStruct(shape.shape, shape.dtype, sharding=device)
               for path, shape in stored_param_shapes(state_dir).items()}
    return unflatten({path: np.asarray(value) for path, value in restore_stored_params(state_dir, targets).items()})
