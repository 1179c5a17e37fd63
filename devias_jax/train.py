"""The trainer: one linear function, read top to bottom.

setup -> data and durations -> shapes first (eval_shape) -> evaluation suites opened -> params and
optimizer state created sharded -> resume (workdir) / init_from / scratch -> one jitted, donated train
step -> loop with logging, evaluation, checkpoints and preemption -> final evaluation and plots.

What experiments vary is passed in, never patched: `augment=` (the on-device augmentation,
train_augment.device_augment by default), `loss=` (the objective; default: the method's, from the
registry) and `step_hook=` (called with every finished step and its metrics).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import nnx

from devias_jax import checkpoint as ckpt_lib
from devias_jax import evaluators, methods, monitoring, optim, sharding, weights
from devias_jax import suites as suites_lib
from devias_jax.config_validation import ConfigError, check_durations
from devias_jax.data import failures, sources, streams  # TensorFlow itself loads only when a stream starts
from devias_jax.models.devias import picks_slots_with_source_head
from devias_jax.models.vit import backbone_depth
from devias_jax.param_rules import flat_values, path_str
from devias_jax.prefetch import DevicePrefetcher
from devias_jax.preprocess import to_unit
from devias_jax.torch_reader import CheckpointError
from devias_jax.train_augment import device_augment

# (config, key, clips01 (B, T, H, W, 3) in [0, 1], targets, *, groups, mask_targets, mix_scale)
#   -> (model input, targets): train_augment.device_augment's signature
Augment = Callable[..., tuple[jax.Array, dict]]
# (run config, model outputs, targets) -> (scalar loss, metrics): methods.Objective
Loss = methods.Objective
# (finished step, that step's metrics on device) -> None
StepHook = Callable[[int, dict], None]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; the run stopped and the last good checkpoint was kept."""


@dataclasses.dataclass(frozen=True)
class Durations:
    """Every `*_epochs` / `*_steps` setting resolved to steps (0 = never)."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_every: int
    checkpoint_every: int
    log_every: int


def resolve_durations(config: Any, train_size: int) -> Durations:
    check_durations(config)  # one unit per duration
    batch = config.train.batch_size
    steps_per_epoch = train_size // batch
    if steps_per_epoch < 1:
        raise ValueError(f"the training list has {train_size} videos, fewer than one global batch "
                         f"(config.train.batch_size={batch})")

    def pick(steps: int, epochs: float) -> int:
        if steps >= 0:
            return int(steps)
        return int(round(epochs * steps_per_epoch)) if epochs >= 0 else 0

    train = config.train
    total = pick(train.num_steps, train.num_epochs)
    if total < 1:
        raise ValueError("nothing to train: set config.train.num_epochs or config.train.num_steps > 0")
    return Durations(steps_per_epoch=steps_per_epoch, total_steps=total,
                     warmup_steps=pick(config.optim.warmup_steps, config.optim.warmup_epochs),
                     eval_every=pick(train.eval_every_steps, train.eval_every_epochs),
                     checkpoint_every=pick(train.checkpoint_every_steps, train.checkpoint_every_epochs),
                     log_every=max(1, int(train.log_every_steps)))


def _opt_state_shardings(abstract_opt_state: Any, abstract_params: Any, param_shardings: Any, mesh) -> Any:
    """Optimizer-state leaves that mirror a parameter (Adam moments: same shape, path ending in the
    parameter's path) take its sharding; everything else (step counts) is replicated."""
    shapes = {path: tuple(leaf.shape) for path, leaf in flat_values(abstract_params).items()}
    specs = flat_values(param_shardings)

    def pick(keypath, leaf):
        path = path_str(keypath)
        for param_path, shape in shapes.items():
            if (path == param_path or path.endswith("/" + param_path)) and tuple(leaf.shape) == shape:
                return specs[param_path]
        return sharding.replicated(mesh)

    return jax.tree_util.tree_map_with_path(pick, abstract_opt_state)


def _write_json(path: str, payload: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(tmp, path)


@dataclasses.dataclass
class StepParts:
    """What the trainer and the benchmark share: the model graph, the sharded state layout, a jitted
    sharded initialiser and the jitted, donated train step `(state, batch, frozen) -> (state, metrics)`."""

    graphdef: Any
    abstract_params: Any
    tx: Any
    schedule: optim.Schedule
    state_shardings: dict
    init_state: Callable
    train_step: Callable
    frozen: dict  # non-trained inputs of the step (the online scene teacher's params), already placed
    teacher: tuple[Any, Any] | None = None  # (graphdef, params) of the online scene teacher, if any


def build_step(config: Any, mesh, *, global_batch: int, total_steps: int, warmup_steps: int,
               random_teacher: bool = False, augment: Augment = device_augment, loss: Loss | None = None
               ) -> StepParts:
    """Shapes first (eval_shape), then the optimizer, the state shardings and the jitted step.

    The step: uint8 clips -> [0, 1] -> `augment` (default: FAME targets, scene mix, BE, mixup) ->
    online teacher scene logits on the augmented clip (data.scene_source=teacher) -> model -> `loss`
    (default: the method's objective: matching and losses) -> gradients -> AdamW. Randomness is
    fold_in(key, step): a resumed run replays exactly. `random_teacher` lets benchmarks run the teacher
    path without a teacher checkpoint.
    """
    model_entry = methods.model_of(config.model)  # the method, resolved once for the whole step
    objective = loss or model_entry.loss
    mask_targets = bool(model_entry.mask_targets(config))
    abstract_model = nnx.eval_shape(lambda: model_entry.build(config.model, nnx.Rngs(0)))
    graphdef, abstract_params, abstract_rest = nnx.split(abstract_model, nnx.Param, ...)
    abstract_params = abstract_params.to_pure_dict()
    if jax.tree.leaves(abstract_rest):
        raise ValueError("the model holds non-parameter state; the trainer only carries nnx.Param")
    param_shardings = sharding.param_shardings(abstract_params, mesh, config.sharding)
    tx, schedule = optim.make_optimizer(config.optim, abstract_params, depth=backbone_depth(config.model),
                                        global_batch_size=global_batch, total_steps=total_steps,
                                        warmup_steps=warmup_steps)
    opt_shardings = _opt_state_shardings(jax.eval_shape(tx.init, abstract_params), abstract_params,
                                         param_shardings, mesh)
    state_shardings = {"params": param_shardings, "opt_state": opt_shardings, "step": sharding.replicated(mesh)}

    def init_state_fn(key):
        model = model_entry.build(config.model, nnx.Rngs(params=key))
        params = nnx.state(model, nnx.Param).to_pure_dict()
        return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}

    teacher_graphdef, frozen = None, {}
    if config.data.scene_source == "teacher":
        teacher_graphdef, frozen = _load_teacher(config, mesh, random_teacher)

    root_key = jax.random.key(config.seed)
    dropout_root = jax.random.fold_in(root_key, 1)
    augment_root = jax.random.fold_in(root_key, 2)
    mix_groups = config.augment.mix_groups or int(np.prod([mesh.shape[a] for a in sharding.BATCH_AXES]))
    # scene mixing ramps up linearly over the first `scene_mix_ramp` of training (0: full from step 0)
    mix_ramp_steps = int(round(float(config.augment.scene_mix_ramp) * total_steps))

    def train_step(state, batch, frozen):
        step = state["step"]
        clips01 = to_unit(batch["clips"])  # (B, T, H, W, 3) in [0, 1]
        targets = {"action": batch["action"], "scene": batch["scene"]}
        mix_scale = jnp.clip(step.astype(jnp.float32) / mix_ramp_steps, 0.0, 1.0) if mix_ramp_steps else 1.0
        clips, targets = augment(config, jax.random.fold_in(augment_root, step), clips01, targets,
                                 groups=mix_groups, mask_targets=mask_targets, mix_scale=mix_scale)
        if teacher_graphdef is not None:  # scene targets from the frozen teacher on the clip as trained
            teacher = nnx.merge(teacher_graphdef, frozen["teacher"])
            targets.pop("scene")
            targets["scene_teacher_logits"] = jax.lax.stop_gradient(
                teacher(clips, train=False)["scene_logits"].astype(jnp.float32))  # (B, C_s)
        dropout_key = jax.random.fold_in(dropout_root, step)

        def loss_fn(params):
            model = nnx.merge(graphdef, params)
            outputs = model(clips, train=True, rngs=nnx.Rngs(dropout=dropout_key))
            return objective(config, outputs, targets)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
                   "lr": schedule(step // config.optim.update_freq)}
        return {"params": params, "opt_state": opt_state, "step": step + 1}, metrics

    batch_shardings = {name: sharding.batch_sharding(mesh, ndim)
                       for name, ndim in (("clips", 5), ("action", 1), ("scene", 1), ("index", 1))}
    frozen_shardings = jax.tree.map(lambda x: x.sharding, frozen)
    return StepParts(
        graphdef=graphdef, abstract_params=abstract_params, tx=tx, schedule=schedule,
        state_shardings=state_shardings,
        init_state=jax.jit(init_state_fn, out_shardings=state_shardings),
        train_step=jax.jit(train_step, in_shardings=(state_shardings, batch_shardings, frozen_shardings),
                           out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=(0,)),
        frozen=frozen, teacher=(teacher_graphdef, frozen["teacher"]) if teacher_graphdef is not None else None)


def _load_teacher(config: Any, mesh, random_teacher: bool) -> tuple[Any, dict]:
    """The frozen scene teacher (config.loss.teacher) with its weights, replicated over the mesh."""
    teacher_config = config.loss.teacher
    if teacher_config.checkpoint:
        graphdef, params, report = weights.load_params(teacher_config, teacher_config.checkpoint, mesh, seed=config.seed)
        logging.info("scene teacher from %s: %s", teacher_config.checkpoint, report.summary())
        return graphdef, {"teacher": params}
    if not random_teacher:
        raise ValueError("config.data.scene_source='teacher' needs config.loss.teacher.checkpoint (a converted "
                         "or PyTorch Places365 scene model, or one trained with configs/places365_scene.py)")
    graphdef, params = nnx.split(methods.build_model(teacher_config, rngs=nnx.Rngs(config.seed)), nnx.Param)
    return graphdef, {"teacher": jax.device_put(params.to_pure_dict(), sharding.replicated(mesh))}


def train_and_evaluate(config: Any, workdir: str, *, augment: Augment = device_augment, loss: Loss | None = None,
                       step_hook: StepHook | None = None) -> dict:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the final metrics.

    `augment` and `loss` go to build_step. step_hook(step, metrics) runs after every finished step with
    that step's metrics (device arrays; tests use it to simulate a preemption or to see what the step
    computed). Metrics with a shape reach the hook only; the scalars are logged.
    """
    # ==================================================================== setup
    mesh = sharding.run_mesh(config)
    is_main = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    if is_main:
        _write_json(os.path.join(workdir, "config.json"), config.to_dict())
    writer = monitoring.MetricWriter(workdir, enabled=is_main)
    logging.info("mesh %s over %d devices (%d processes)", dict(mesh.shape), jax.device_count(),
                 jax.process_count())

    # ==================================================================== data and durations
    train_source = sources.get(config)  # bad lines / labels / files fail here, before any compile
    train_size = len(train_source)
    global_batch = config.train.batch_size
    local_batch = sharding.local_batch_size(global_batch, mesh)
    durations = resolve_durations(config, train_size)
    logging.info("%d training videos, %d steps per epoch, %d steps, global batch %d (%d per process)",
                 train_size, durations.steps_per_epoch, durations.total_steps, global_batch, local_batch)

    # ==================================================================== model, optimizer and step: shapes first
    parts = build_step(config, mesh, global_batch=global_batch, total_steps=durations.total_steps,
                       warmup_steps=durations.warmup_steps, augment=augment, loss=loss)
    graphdef, state_shardings = parts.graphdef, parts.state_shardings
    # Built once, before anything compiles (its lists opened, so a bad one fails now; teacher loaded):
    # every periodic evaluation reuses its jitted predict functions.
    has_suites = bool(suites_lib.parse(config))
    suites_evaluator = evaluators.get("suites")(config, graphdef, mesh, workdir, teacher=parts.teacher) \
        if has_suites else None
    if is_main:
        depth = backbone_depth(config.model)
        logging.info("parameter groups:\n%s", optim.describe_groups(parts.abstract_params, config.optim, depth))
        count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(parts.abstract_params))
        print(f"model {config.model.name}: {count / 1e6:.2f}M parameters; {durations.total_steps} steps of "
              f"{global_batch} clips on {jax.device_count()} {jax.devices()[0].platform} device(s)", flush=True)
    root_key = jax.random.key(config.seed)

    # ==================================================================== resume / init_from / scratch
    checkpoints = ckpt_lib.Checkpoints(os.path.join(workdir, "checkpoints"), config.checkpoint,
                                       best_metric=config.eval.best_metric, best_mode="max")
    abstract_state = jax.tree.map(lambda leaf, spec: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=spec),
                                  jax.eval_shape(parts.init_state, root_key), state_shardings)
    latest = checkpoints.latest_step()
    if latest is not None:
        state, meta = checkpoints.restore(latest, abstract_state)
        logging.info("resumed from %s step %d", checkpoints.directory, latest)
        print(f"resumed from step {latest}", flush=True)
    else:
        state = parts.init_state(jax.random.fold_in(root_key, 0))
        if config.init_from:
            state["params"] = _load_init_from(config, state["params"], state_shardings["params"])
        elif picks_slots_with_source_head(config.model):
            raise ConfigError("config.model.fusion_variant='official' picks the slots with the DEVIAS source's "
                              "unified head; set config.init_from to the source (it is loaded from there)")
    start_step = int(jax.device_get(state["step"]))

    # ==================================================================== loop
    train_stream = streams.train_batches(
        config, global_batch_size=global_batch, process_index=jax.process_index(),
        process_count=jax.process_count(), seed=config.seed, start_step=start_step, source=train_source)

    def place(batch: dict) -> tuple[dict, int]:
        """Host batch -> (global arrays for the step, clips of this process that replaced a bad file)."""
        substituted = int(np.count_nonzero(batch.pop("substituted")))
        return sharding.to_global(batch, mesh), substituted

    # The prefetcher owns the stream from here on: its close() stops the thread, then closes the stream.
    stream = DevicePrefetcher(train_stream, place=place, depth=2, timeout_s=config.data.batch_timeout_s,
                              describe_stuck=train_stream.describe_stuck)
    bad_inputs = _BadInputReport(workdir, train_stream.failures)
    progress = monitoring.Progress(durations.total_steps, start_step, global_batch, enabled=is_main)
    watch = ckpt_lib.PreemptionWatch()
    history: list[tuple[int, dict]] = []  # device metrics since the last log step
    last_report: dict = {}
    last_train: dict = {}

    def pull_history() -> dict[str, float]:
        host = [(s, jax.device_get(m)) for s, m in history]
        history.clear()
        for s, values in host:
            if not np.isfinite(values["loss"]):
                raise NonFiniteLossError(f"non-finite loss ({values['loss']}) at step {s}; stopped. The last "
                                         f"good checkpoint is kept in {checkpoints.directory} "
                                         f"(steps {checkpoints.all_steps()})")
        return monitoring.mean_metrics([values for _, values in host])

    def save(step: int, metrics: dict | None = None) -> None:
        checkpoints.save(step, state, {"step": step, "epoch": step / durations.steps_per_epoch,
                                       "time": time.time()}, metrics=metrics)

    def run_eval(step: int) -> dict:
        report = suites_evaluator.run(state["params"], step=step, extra={"training_data": bad_inputs.totals()})
        headline = {k: report[k] for k in ("action_seen", "action_unseen", "scene_seen", "scene_unseen",
                                           "scene_seen_top1", "scene_unseen_top1", "harmonic_mean")}
        writer.write(step, headline, split="eval")
        return report

    step = start_step
    try:
        for step in range(start_step + 1, durations.total_steps + 1):  # `step` = steps finished after this one
            batch, substituted = next(stream)
            bad_inputs.add(substituted)
            state, metrics = parts.train_step(state, batch, parts.frozen)
            history.append((step, {name: value for name, value in metrics.items() if not value.shape}))
            if step_hook is not None:
                step_hook(step, metrics)
            is_last = step == durations.total_steps
            if step % durations.log_every == 0 or is_last:
                last_train = pull_history()
                window = bad_inputs.end_window()  # a collective over processes: every process is here
                clips_per_second = progress.update(step, last_train, note=bad_inputs.console_note(window))
                writer.write(step, {**last_train, "clips_per_second": clips_per_second})
                writer.write(step, window, split="data")
            eval_now = has_suites and (
                is_last or (durations.eval_every and step % durations.eval_every == 0))
            save_now = is_last or (durations.checkpoint_every and step % durations.checkpoint_every == 0)
            if eval_now:
                last_report = run_eval(step)
            if save_now or eval_now:
                pull_history()  # never save a state reached through a non-finite loss
                save(step, {**last_train, config.eval.best_metric: last_report[config.eval.best_metric]}
                     if eval_now and config.eval.best_metric else last_train)
            if not is_last and watch.should_stop(step, sync=step % durations.log_every == 0):
                pull_history()
                save(step, last_train)
                checkpoints.wait()
                print(f"stopped at step {step} on request; the run resumes from this step", flush=True)
                return {"stopped_at": step, **last_train}
    finally:
        stream.close()
        bad_inputs.write_list()
        checkpoints.close()
        watch.restore_handlers()
        writer.close()

    # ==================================================================== end: plots
    if is_main and config.train.plot_curves:
        from devias_jax.visualize import plot_training_curves  # matplotlib loads only when a run plots

        plot_training_curves(monitoring.read_metrics(workdir), os.path.join(workdir, "training_curves.png"))
    totals = bad_inputs.totals()
    if is_main and totals["substituted_clips"]:
        print(f"{totals['substituted_clips']} training clip(s) replaced a file that could not be decoded; "
              f"{totals['files_bad']} bad file(s) listed in {bad_inputs.path}", flush=True)
    return {"step": step, **last_train, **{k: v for k, v in last_report.items() if k != "suites"},
            "training_data": totals}


class _BadInputReport:
    """Training clips that replaced an undecodable file: counted per log window (summed over processes)
    for the console line and metrics.jsonl (split 'data'), totals for report.json, and every bad file
    with its reason in <workdir>/bad_videos.txt (process p > 0: bad_videos.process<p>.txt)."""

    def __init__(self, workdir: str, tracker: failures.FailureTracker):
        self.tracker = tracker
        self.path = failures.bad_list_path(workdir, jax.process_index())
        self._window = 0
        self._total = 0
        self._written = -1
        self._global = {"files_tried": 0, "files_bad": 0}

    def add(self, substituted: int) -> None:
        self._window += substituted

    def end_window(self) -> dict[str, int]:
        """The log window's counts, summed over processes; also refreshes bad_videos.txt."""
        local = [self._window, len(self.tracker.bad), self.tracker.tried]
        window, files_bad, files_tried = (int(v) for v in sharding.sum_over_processes(local))
        self._window = 0
        self._total += window
        self._global = {"files_tried": files_tried, "files_bad": files_bad}
        self.write_list()
        return {"substituted_clips": window, "substituted_clips_total": self._total, **self._global}

    def totals(self) -> dict[str, Any]:
        return {"substituted_clips": self._total, **self._global, "bad_videos_file": self.path}

    def console_note(self, window: dict[str, int]) -> str:
        if not window["files_bad"]:
            return ""
        return (f"substituted {window['substituted_clips']} clip(s) ({window['substituted_clips_total']} in all; "
                f"{window['files_bad']} bad file(s): {os.path.basename(self.path)})")

    def write_list(self) -> None:
        bad = self.tracker.bad_files()
        if not bad or len(bad) == self._written:  # never overwrite an earlier run's list with nothing
            return
        failures.write_bad_files(self.path, bad, f"{len(bad)} file(s) could not be decoded; each training "
                                 "clip that drew one was replaced by a deterministic draw from the list")
        self._written = len(bad)


def _load_init_from(config: Any, params: Any, param_shardings: Any) -> Any:
    """Copies `config.init_from` weights into freshly initialised params, each placed on its sharding.
    Parameters matching config.checkpoint.init_skip (default: heads) keep their initial values when the
    checkpoint's shape differs (e.g. a new class count); any other mismatch is an error."""
    try:
        params, report = weights.restore_params(params, config.init_from, config.model, shardings=param_shardings)
    except CheckpointError as error:
        if not config.checkpoint.init_skip or "shape mismatch" not in str(error):
            raise
        params, report = weights.restore_params(params, config.init_from, config.model, shardings=param_shardings,
                                                skip=config.checkpoint.init_skip)
    print(f"init_from {config.init_from}:\n{report.summary()}", flush=True)
    if picks_slots_with_source_head(config.model) and "head/kernel" not in report.loaded:
        raise CheckpointError(
            f"config.model.fusion_variant='official' picks the slots with the source's unified head, but "
            f"{config.init_from} has no head of shape {tuple(params['head']['kernel'].shape)} (D x "
            f"(source_num_actions + num_scenes) = {config.model.source_num_actions} + {config.model.num_scenes}); "
            "check config.model.source_num_actions against the source's action classes")
    return params
