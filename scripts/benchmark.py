"""Times the jitted training step (forward, slot matching, losses, backward, AdamW update) on random
in-memory clips, for any method of any recipe. Needs only jax / flax / optax (no TensorFlow, no data).

  python scripts/benchmark.py --config=configs/kinetics400.py:method=devias --batch_size=12 --steps=20
  python scripts/benchmark.py --config=configs/ucf101.py:method=devias,smoke --batch_size=4 --steps=3
  python scripts/benchmark.py --config=configs/ucf101.py:method=devias --config.model.dtype=bfloat16

Prints the step time (median over the timed steps), clips/s and, on a GPU/TPU, the model FLOPs
utilisation (MFU) = achieved model FLOP/s / the chip's dense bf16 peak.

FLOP count (analytic, per clip, multiply-adds; FLOPs = 2 x MACs). With N patch tokens, L = N + extra
tokens (class / scene token), width D, MLP ratio r, depth 12 for ViT-B:
  tubelet embedding  N * (3 * t * p * p) * D
  each ViT block     (4 + 2r) * L * D^2   (qkv 3LD^2, projection LD^2, MLP 2rLD^2)  +  2 * L^2 * D  (QK^T, AV)
  slot attention     K/V: 2 * N * D * I once (per iteration if untied), I = heads * head_dim; per iteration:
                     q K*D*I, scores + weighted sum 2*K*N*I, output K*I*D, feed-forward 2r*K*D^2
  heads              K * D * (C_a + C_s) (DEVIAS, one Linear per slot) + mask decoder K*(D*h1 + h1*h2 + h2*P)
ViT-B at 16x224 (N = 1568): 180 GMACs = 361 GFLOPs per clip forward. A training step counts 3x the
forward (backward = 2x forward); rematerialisation and the matching / loss maths are not counted.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

# Dense bf16 peak FLOP/s per chip (vendor figures, no sparsity), matched against device_kind.
PEAK_BF16_FLOPS = [
    ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12),
    ("L4", 121e12), ("A10G", 70e12), ("V100", 125e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5 lite", 197e12), ("TPU v5e", 197e12), ("TPU v4", 275e12),
]


def peak_flops(device: Any) -> float | None:
    kind = getattr(device, "device_kind", "")
    for name, flops in PEAK_BF16_FLOPS:
        if name.lower() in kind.lower():
            return flops
    return None


def forward_macs(model_config: Any) -> float:
    """Multiply-adds of one clip's forward pass (see the module docstring for the formula)."""
    from devias_jax.models.vit import vit_config_from

    name = model_config.name
    overrides = {}
    if name in ("devias", "devias_downstream", "two_token"):
        overrides = dict(pooling="none", num_classes=0)
        if name == "two_token":
            overrides.update(num_prefix_tokens=1, num_suffix_tokens=1)
    elif name in ("one_token", "action_vit", "scene_vit"):
        overrides = dict(num_classes=0)
    vit = vit_config_from(model_config, **overrides)
    dim, ratio = vit.embed_dim, vit.mlp_ratio
    tokens = vit.num_patches
    length = tokens + vit.num_prefix_tokens + vit.num_suffix_tokens
    macs = tokens * (vit.in_channels * vit.tubelet_size * vit.patch_size ** 2) * dim
    macs += vit.depth * ((4 + 2 * ratio) * length * dim ** 2 + 2 * length ** 2 * dim)
    num_actions, num_scenes = int(model_config.get("num_actions", 0)), int(model_config.get("num_scenes", 0))
    if name in ("devias", "devias_downstream") and (name == "devias" or model_config.fusion == "concat"):
        slots, iterations = int(model_config.num_slots), int(model_config.slot_iterations)
        inner = int(model_config.slot_heads) * int(model_config.slot_head_dim)
        kv_passes = 1 if model_config.slot_tied else iterations
        macs += kv_passes * 2 * tokens * dim * inner
        macs += iterations * (slots * dim * inner + 2 * slots * tokens * inner + slots * inner * dim
                              + 2 * float(model_config.slot_mlp_ratio) * slots * dim ** 2)
        if name == "devias":
            mask_size = (vit.img_size // vit.patch_size) ** 2
            widths = (dim, *model_config.mask_decoder_dims, mask_size)
            macs += slots * dim * (num_actions + num_scenes)
            macs += slots * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    elif name in ("one_token", "two_token"):
        macs += 2 * dim * (num_actions + num_scenes)
    else:
        macs += dim * max(num_actions, num_scenes, int(model_config.get("num_classes", 0)))
    return float(macs)


def random_batch(config: Any, batch_size: int, seed: int = 0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Normalised random clips (B, T, H, W, 3) and every target any method may read."""
    from devias_jax.models.vit import vit_config_from

    model = config.model
    vit = vit_config_from(model, pooling="none", num_classes=0)
    rng = np.random.default_rng(seed)
    grid_t, grid_h, grid_w = vit.grid
    num_actions = max(int(model.get("num_actions", 1)), 1)
    num_scenes = max(int(model.get("num_scenes", 1)), 1)
    clips = rng.standard_normal((batch_size, vit.num_frames, vit.img_size, vit.img_size, 3)).astype(np.float32)
    targets = {
        "action": rng.integers(0, num_actions, batch_size).astype(np.int32),
        "scene": rng.integers(0, num_scenes, batch_size).astype(np.int32),
        "scene_teacher_logits": rng.standard_normal((batch_size, num_scenes)).astype(np.float32),
        "clip_mask_target": rng.uniform(size=(batch_size, grid_h * grid_w)).astype(np.float32),
        "tubelet_mask_target": rng.uniform(size=(batch_size, grid_t * grid_h * grid_w)).astype(np.float32),
    }
    return jnp.asarray(clips), {k: jnp.asarray(v) for k, v in targets.items()}


def make_train_step(config: Any, model: Any, learning_rate: float = 1e-4, weight_decay: float = 0.05):
    """(jitted step(params, opt_state, clips, targets, step) -> (params, opt_state, metrics), params, opt_state).

    A plain optax.adamw stands in for the project's optimizer; randomness per step = fold_in(key, step).
    """
    import optax
    from flax import nnx

    from devias_jax import losses

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
    opt_state = optimizer.init(params)
    base_key = jax.random.key(int(config.get("seed", 0)))

    def loss_fn(params, clips, targets, key):
        module = nnx.merge(graphdef, params, rest)
        outputs = module(clips, train=True, rngs=nnx.Rngs(dropout=key))
        return losses.compute_loss(config, outputs, targets)

    @jax.jit
    def train_step(params, opt_state, clips, targets, step):
        key = jax.random.fold_in(base_key, step)
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, clips, targets, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics["grad_norm"] = optax.global_norm(grads)
        return optax.apply_updates(params, updates), opt_state, metrics

    return train_step, params, opt_state


def run(config: Any, batch_size: int, steps: int, warmup: int, peak_tflops: float = 0.0) -> dict[str, float]:
    from flax import nnx

    from devias_jax import config_validation
    from devias_jax.models import build_model

    config_validation.validate(config)
    device = jax.devices()[0]
    model = build_model(config.model, rngs=nnx.Rngs(0))
    train_step, params, opt_state = make_train_step(config, model)
    clips, targets = random_batch(config, batch_size)
    start = time.perf_counter()
    params, opt_state, metrics = train_step(params, opt_state, clips, targets, 0)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    for step in range(1, warmup):
        params, opt_state, metrics = train_step(params, opt_state, clips, targets, step)
    jax.block_until_ready(metrics)
    times = []
    for step in range(warmup, warmup + steps):
        start = time.perf_counter()
        params, opt_state, metrics = train_step(params, opt_state, clips, targets, step)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    train_flops = 3 * 2 * forward_macs(config.model) * batch_size
    peak = peak_tflops * 1e12 if peak_tflops else peak_flops(device)
    result = {"step_s": step_s, "clips_per_s": batch_size / step_s, "compile_s": compile_s,
              "forward_gflops_per_clip": 2 * forward_macs(config.model) / 1e9,
              "achieved_tflops": train_flops / step_s / 1e12, "loss": float(metrics["loss"]),
              "grad_norm": float(metrics["grad_norm"])}
    if peak and device.platform != "cpu":
        result["mfu"] = train_flops / step_s / peak
    return result


def main(argv: list[str]) -> None:
    from absl import flags

    del argv
    flag = flags.FLAGS
    config = flag.config
    device = jax.devices()[0]
    result = run(config, flag.batch_size, flag.steps, flag.warmup, flag.peak_tflops)
    model = config.model
    print(f"method {config.method} (model {model.name}, variant {model.variant}, dtype {model.dtype}, "
          f"{model.num_frames}x{model.img_size}, matching {config.loss.matching}) on "
          f"{device.platform}:{getattr(device, 'device_kind', '?')} x{jax.device_count()} (timing one device)")
    print(f"batch {flag.batch_size}: step {result['step_s'] * 1e3:.1f} ms (median of {flag.steps}), "
          f"{result['clips_per_s']:.1f} clips/s, compile {result['compile_s']:.1f} s")
    print(f"model FLOPs: {result['forward_gflops_per_clip']:.4g} GFLOPs/clip forward, x3 per training clip; "
          f"achieved {result['achieved_tflops']:.4g} TFLOP/s")
    if "mfu" in result:
        print(f"MFU: {100 * result['mfu']:.1f}% of the dense bf16 peak")
    else:
        print("MFU: n/a (CPU, or unknown accelerator: pass --peak_tflops)")
    print(f"loss {result['loss']:.4f}, grad norm {result['grad_norm']:.4f} (finite: "
          f"{bool(np.isfinite(result['loss']) and np.isfinite(result['grad_norm']))})")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "recipe file with ':args', e.g. configs/ucf101.py:method=devias")
    flags.DEFINE_integer("batch_size", 8, "clips per step (one device)")
    flags.DEFINE_integer("steps", 10, "timed steps")
    flags.DEFINE_integer("warmup", 2, "untimed steps, the first one compiles")
    flags.DEFINE_float("peak_tflops", 0.0, "the accelerator's peak TFLOP/s for MFU (0: look up device_kind)")
    flags.mark_flags_as_required(["config"])
    app.run(main)
