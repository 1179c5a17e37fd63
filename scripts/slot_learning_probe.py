"""Does a method learn the synthetic motions? A fast in-memory probe for recipe and model questions.

Renders a synthetic action/scene dataset straight into memory (devias_jax/data/synthetic.py, no video
encoding or decoding), trains each method with the trainer's own jitted step (`train.build_step`: FAME
masks, scene mix, matching and losses as in a real run) on one device, and scores action and scene top-1
on val_seen / val_unseen (one centred temporal view, no crops) every `--eval_every` steps.

  python scripts/slot_learning_probe.py --methods=action_vit,devias --steps=1500 \
      --set=model.tubelet_size=4 --set=augment.scene_mix_prob=0

`--set=key=value` overrides the demo recipe for every method (values are Python literals); `--data`
sets synthetic.Spec fields (`--data=motion=0.3,train_per_action=1000`). Training clips get no spatial
augmentation (the temporal window is drawn like the trainer's). Results print as a table and go to
`--out` as JSON lines (one line per method and evaluation step).
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from flax import nnx  # noqa: E402

from devias_jax import sharding  # noqa: E402
from devias_jax.config_loading import load_config  # noqa: E402
from devias_jax.config_validation import validate  # noqa: E402
from devias_jax.data import decode, synthetic  # noqa: E402
from devias_jax.preprocess import normalize_uint8  # noqa: E402
from devias_jax.train import build_step  # noqa: E402

flags.DEFINE_list("methods", ["action_vit", "two_token", "devias"], "methods of configs/demo.py")
flags.DEFINE_integer("steps", 1500, "training steps per method")
flags.DEFINE_integer("eval_every", 500, "evaluate every this many steps (and at the end)")
flags.DEFINE_multi_string("set", [], "config override key=value (Python literal), applied to every method")
flags.DEFINE_string("data", "", "synthetic.Spec fields, comma-separated key=value")
flags.DEFINE_integer("seed", 0, "training seed (config.seed)")
flags.DEFINE_string("out", "", "JSON-lines results file (appended)")
FLAGS = flags.FLAGS

DEMO_SPEC = dict(actions=("rise", "fall", "grow", "shrink", "sway", "spin"), num_actions=6, num_scenes=6,
                 motion=0.2, clutter=0.3, train_per_action=80)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def spec_from_flag(text: str) -> synthetic.Spec:
    fields = dict(DEMO_SPEC)
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        fields[key.strip()] = _literal(value)
    if isinstance(fields.get("actions"), str):
        fields["actions"] = tuple(fields["actions"].split("+"))
        fields["num_actions"] = len(fields["actions"])
    return synthetic.Spec(**fields)


def render_split(spec: synthetic.Spec, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 (N, T, H, W, 3), action (N,), scene (N,)) of one split, as the generator draws them."""
    layout = synthetic.plan(spec)[split]
    frames = np.empty((len(layout), spec.frames, spec.height, spec.width, 3), np.uint8)
    for number, (action, scene) in enumerate(layout):
        rng = np.random.default_rng([spec.seed, synthetic.SPLITS.index(split), number])
        frames[number] = synthetic.render_clip(spec, action, scene, rng)[0]
    labels = np.asarray(layout, np.int32).reshape(-1, 2)
    return frames, labels[:, 0], labels[:, 1]


def method_config(method: str, overrides: list[str], seed: int, num_actions: int, num_scenes: int):
    config = load_config(f"configs/demo.py:method={method}")
    config.seed = seed
    config.data.update(num_actions=num_actions, num_scenes=num_scenes)
    for item in overrides:
        key, _, value = item.partition("=")
        node = config
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node[part]
        setattr(node, leaf, _literal(value))
    validate(config)
    return config


def evaluate(predict, params, clips: np.ndarray, action: np.ndarray, scene: np.ndarray, batch: int = 64):
    """Action and scene top-1 (%) of `clips` (N, T, H, W, 3)."""
    hits_action = hits_scene = 0
    has_scene = True
    for start in range(0, len(clips), batch):
        out = predict(params, clips[start:start + batch])
        hits_action += int((np.asarray(out["action_logits"]).argmax(-1) == action[start:start + batch]).sum())
        if "scene_logits" in out:
            hits_scene += int((np.asarray(out["scene_logits"]).argmax(-1) == scene[start:start + batch]).sum())
        else:
            has_scene = False
    return 100.0 * hits_action / len(clips), (100.0 * hits_scene / len(clips) if has_scene else float("nan"))


def run_method(method: str, spec: synthetic.Spec, train, evals, out_file: str) -> list[dict]:
    config = method_config(method, FLAGS.set, FLAGS.seed, spec.num_actions, spec.num_scenes)
    frames_per_clip, stride = int(config.model.num_frames), int(config.data.frame_stride)
    batch_size = int(config.train.batch_size)
    mesh = sharding.make_mesh(1, num_devices=1)
    parts = build_step(config, mesh, global_batch=batch_size, total_steps=FLAGS.steps,
                       warmup_steps=max(1, FLAGS.steps // 15))
    state = parts.init_state(jax.random.fold_in(jax.random.key(config.seed), 0))

    @jax.jit
    def predict(params, clips):
        return nnx.merge(parts.graphdef, params)(normalize_uint8(clips), train=False)

    clips, actions, scenes = train
    rng = np.random.default_rng([FLAGS.seed, 17])
    rows_log, start, losses = [], time.time(), []
    for step in range(1, FLAGS.steps + 1):
        rows = rng.integers(0, len(clips), batch_size)
        batch = np.stack([clips[r][decode.train_indices(clips.shape[1], frames_per_clip, stride, rng)] for r in rows])
        placed = sharding.to_global({"clips": batch, "action": actions[rows], "scene": scenes[rows],
                                     "index": rows.astype(np.int32)}, mesh)
        state, metrics = parts.train_step(state, placed, parts.frozen)
        losses.append(metrics)
        if step % FLAGS.eval_every == 0 or step == FLAGS.steps:
            host = jax.device_get(losses)
            losses = []
            record = {"method": method, "step": step, "seconds": round(time.time() - start, 1),
                      "set": FLAGS.set, "data": FLAGS.data, "seed": FLAGS.seed}
            record.update({k: round(float(np.mean([h[k] for h in host])), 4) for k in host[0]
                           if k.startswith("loss")})
            for name, (eval_clips, eval_action, eval_scene) in evals.items():
                record[f"{name}_action"], record[f"{name}_scene"] = evaluate(
                    predict, state["params"], eval_clips, eval_action, eval_scene)
            print(json.dumps(record), flush=True)
            rows_log.append(record)
            if out_file:
                with open(out_file, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
    return rows_log


def main(argv):
    del argv
    spec = spec_from_flag(FLAGS.data)
    start = time.time()
    train = render_split(spec, "train")
    # the centred test window of the clip geometry every method shares (the overrides included)
    geometry = method_config(FLAGS.methods[0], FLAGS.set, FLAGS.seed, spec.num_actions, spec.num_scenes)
    index = decode.test_indices(spec.frames, int(geometry.model.num_frames), int(geometry.data.frame_stride), 1)[0]
    evals = {}
    for split in ("val_seen", "val_unseen"):
        clips, action, scene = render_split(spec, split)
        evals[split] = (clips[:, index], action, scene)
    print(f"rendered {len(train[0])} training clips in {time.time() - start:.0f}s", flush=True)
    results = {m: run_method(m, spec, train, evals, FLAGS.out)[-1] for m in FLAGS.methods}
    print(f"{'method':<12} {'seen act':>8} {'unseen act':>10} {'seen scn':>8} {'unseen scn':>10}")
    for method, r in results.items():
        print(f"{method:<12} {r['val_seen_action']:8.1f} {r['val_unseen_action']:10.1f} "
              f"{r['val_seen_scene']:8.1f} {r['val_unseen_scene']:10.1f}")


if __name__ == "__main__":
    app.run(main)
