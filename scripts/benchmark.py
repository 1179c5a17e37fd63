"""Times the trainer's jitted training step (on-device FAME masks and scene mix, forward, slot
matching, losses, backward, AdamW update) on random in-memory uint8 clips, for any method of any
recipe, on one device or sharded over a mesh. Needs only jax / flax / optax (no TensorFlow, no data).

  python -m scripts.benchmark --config=configs/kinetics400.py:method=devias --batch_size=12 --steps=20
  python -m scripts.benchmark --config=configs/ucf101.py:method=devias,smoke --batch_size=4 --steps=3
  python -m scripts.benchmark --config=configs/ucf101.py:method=devias --config.model.dtype=bfloat16
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m scripts.benchmark \
      --config=configs/demo.py:method=devias --batch_size=16 --config.sharding.fsdp=2   # sharded variant

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

import statistics
import time
from typing import Any

import jax
import numpy as np

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
        macs += dim * max(num_actions, num_scenes, int(model_config.get("num_actions", 0)))
    return float(macs)


def random_batch(config: Any, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A host batch shaped like the pipeline's: uint8 clips (B, T, H, W, 3) and int32 labels."""
    model = config.model
    rng = np.random.default_rng(seed)
    num_actions = max(int(model.get("num_actions", 1)), 1)
    num_scenes = max(int(model.get("num_scenes", 1)), 1)
    return {
        "clips": rng.integers(0, 256, (batch_size, model.num_frames, model.img_size, model.img_size, 3), np.uint8),
        "action": rng.integers(0, num_actions, batch_size).astype(np.int32),
        "scene": rng.integers(0, num_scenes, batch_size).astype(np.int32),
        "index": np.arange(batch_size, dtype=np.int32),
    }


def run(config: Any, batch_size: int, steps: int, warmup: int, peak_tflops: float = 0.0) -> dict[str, float]:
    """Times the trainer's own step (devias_jax.train.build_step): on-device FAME targets, scene mix,
    the online teacher when configured (random weights here), model, matching, losses, backward and the
    project's AdamW, over the mesh of config.sharding (global batch `batch_size`)."""
    from devias_jax import config_validation, sharding
    from devias_jax.train import build_step

    config_validation.validate(config)
    mesh = sharding.make_mesh(config.sharding.fsdp, num_devices=config.sharding.num_devices)
    sharding.local_batch_size(batch_size, mesh)  # a clear error if the batch does not split over the mesh
    parts = build_step(config, mesh, global_batch=batch_size, total_steps=10_000, warmup_steps=10,
                       random_teacher=True)
    state = parts.init_state(jax.random.key(0))
    batch = sharding.to_global(random_batch(config, batch_size), mesh)
    start = time.perf_counter()
    state, metrics = parts.train_step(state, batch, parts.frozen)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    for _ in range(1, warmup):
        state, metrics = parts.train_step(state, batch, parts.frozen)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = parts.train_step(state, batch, parts.frozen)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    devices = mesh.devices.size
    train_flops = 3 * 2 * forward_macs(config.model) * batch_size
    device = mesh.devices.flat[0]
    peak = peak_tflops * 1e12 if peak_tflops else peak_flops(device)
    result = {"step_s": step_s, "clips_per_s": batch_size / step_s, "compile_s": compile_s, "devices": devices,
              "forward_gflops_per_clip": 2 * forward_macs(config.model) / 1e9,
              "achieved_tflops": train_flops / step_s / 1e12, "loss": float(metrics["loss"]),
              "grad_norm": float(metrics["grad_norm"])}
    if peak and device.platform != "cpu":
        result["mfu"] = train_flops / step_s / (peak * devices)
    return result


def main(argv: list[str]) -> None:
    from absl import flags

    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    del argv
    flag = flags.FLAGS
    config = flag.config
    device = jax.devices()[0]
    result = run(config, flag.batch_size, flag.steps, flag.warmup, flag.peak_tflops)
    model = config.model
    mesh = f"fsdp {config.sharding.fsdp}" if config.sharding.fsdp != 1 else "data parallel"
    print(f"method {config.method} (model {model.name}, variant {model.variant}, dtype {model.dtype}, "
          f"{model.num_frames}x{model.img_size}, matching {config.loss.matching}, scene mix "
          f"{config.augment.scene_mix_prob}) on {result['devices']} x {device.platform}:"
          f"{getattr(device, 'device_kind', '?')} ({mesh})")
    print(f"global batch {flag.batch_size}: step {result['step_s'] * 1e3:.1f} ms (median of {flag.steps}), "
          f"{result['clips_per_s']:.1f} clips/s, {result['clips_per_s'] / result['devices']:.1f} clips/s per "
          f"device, compile {result['compile_s']:.1f} s")
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
    flags.DEFINE_integer("batch_size", 8, "global clips per step (split over the mesh)")
    flags.DEFINE_integer("steps", 10, "timed steps")
    flags.DEFINE_integer("warmup", 2, "untimed steps, the first one compiles")
    flags.DEFINE_float("peak_tflops", 0.0, "the accelerator's peak TFLOP/s for MFU (0: look up device_kind)")
    flags.mark_flags_as_required(["config"])
    app.run(main)
