"""The demo recipe on generated variants it was not tuned on: one table, every run.

  python -m scripts.experiments.demo_robustness                       # every variant, DEVIAS and Two-Token
  python -m scripts.experiments.demo_robustness --variants=drift,pan_shapes --methods=devias

For each variant the synthetic generator writes a dataset (the demo's flags, `configs/demo.py`
DEMO_DATA_FLAGS, with the variant's flags on top and its own generator seed) under --data_dir, and the
demo's own command trains and evaluates each method on it:

  python main.py --config=configs/demo.py:method=M --workdir=<out>/<variant>/M --config.data.root=<data>

No setting of the recipe changes between variants. Finished runs (an eval/report.json) and datasets are
reused, so an interrupted sweep resumes. The table (action top-1 seen / unseen, scene top-1 seen / unseen,
H.M., DEVIAS's margins over Two-Token, and how well the demo's FAME masks find the actor on each
dataset: `fame_quality`) is printed and written to <out>/table.md and <out>/results.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from configs.demo import DEMO_DATA_FLAGS
from devias_jax import masks
from devias_jax.config_loading import load_config
from devias_jax.data import decode, synthetic


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    seed: int  # generator seed (the demo's dataset is seed 0)
    flags: tuple[str, ...]  # scripts/make_synthetic_dataset.py flags on top of DEMO_DATA_FLAGS
    what: str


# The first four were chosen before any of them was run; none was changed after seeing a result.
VARIANTS = (
    Variant("drift", 2, ("--background_motion=drift",),
            "background texture scrolls (0.01 of the frame per frame)"),
    Variant("pan_shapes", 3, ("--background_motion=pan", "--actor_shape=mixed"),
            "camera pans (background and actor shift); ellipse / box / star actors"),
    Variant("shake_periodic", 4, ("--background_motion=shake", "--background_speed=0.03",
                                  "--actions=circle,bounce,diagonal,pulse,figure_eight,sway"),
            "hand-held camera jitter (std 0.03 of the frame); six periodic motions instead of the demo's"),
    Variant("long_box_clutter", 5, ("--frames=64", "--clutter=0.5", "--actor_shape=box"),
            "64-frame clips, textured scenes and striped actors (clutter 0.5), box actors"),
    # Added after the four above had run: the demo's flat scenes (clutter 0) leave 'drift' only the faint
    # pixel grain to scroll (FAME still finds the actor there), so this one scrolls textured scenes.
    Variant("drift_textured", 6, ("--background_motion=drift", "--clutter=0.5"),
            "textured scenes and striped actors (clutter 0.5), the texture scrolls"),
)
METHODS = ("devias", "two_token")

flags.DEFINE_list("variants", [v.name for v in VARIANTS], "variants to run")
flags.DEFINE_list("methods", list(METHODS), "methods of configs/demo.py")
flags.DEFINE_string("out", "runs/robustness", "workdirs and the table")
flags.DEFINE_string("data_dir", "data/robustness", "generated datasets")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def generator_flags(variant: Variant) -> list[str]:
    """The demo's generator flags with the variant's on top (a variant flag replaces the demo's)."""
    names = {flag.split("=", 1)[0] for flag in variant.flags}
    kept = [flag for flag in DEMO_DATA_FLAGS if flag.split("=", 1)[0] not in names]
    return kept + list(variant.flags) + [f"--seed={variant.seed}"]


def make_dataset(variant: Variant, data: str) -> None:
    wanted = " ".join(generator_flags(variant))
    stamp = os.path.join(data, "generator_flags.txt")
    if os.path.isfile(stamp) and open(stamp).read().strip() == wanted:
        return
    print(f"== {variant.name}: generating {data} ({wanted})", flush=True)
    subprocess.run([sys.executable, "-m", "scripts.make_synthetic_dataset", f"--out={data}",
                    "--workers=2", *generator_flags(variant)], check=True, cwd=ROOT)
    with open(stamp, "w") as handle:
        handle.write(wanted + "\n")


def train(method: str, workdir: str, data: str) -> dict:
    report_path = os.path.join(workdir, "eval", "report.json")
    if not os.path.isfile(report_path):
        print(f"== training {method} in {workdir}", flush=True)
        start = time.time()
        subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), f"--config=configs/demo.py:method={method}",
                        f"--workdir={workdir}", f"--config.data.root={data}", "--mode=train"], check=True, cwd=ROOT)
        with open(os.path.join(workdir, "wall_seconds.txt"), "w") as handle:
            handle.write(f"{time.time() - start:.0f}\n")
    with open(report_path) as handle:
        return json.load(handle)


def fame_quality(data: str, *, beta: float, frames: int, stride: int, clips: int = 64) -> dict:
    """How well the demo's FAME masks (its beta and frame window, blur for a 64 px crop) find the actor on
    a dataset's first training clips (re-rendered from dataset.json's spec; the generator's true actor
    masks): 'fame_on_actor' = % of the FAME foreground on the actor, 'actor_covered' = % of the actor (its
    union over the window) inside the FAME foreground. Centred test window of `frames` at `stride`."""
    spec = synthetic.spec_of_dataset(data)
    layout = synthetic.plan(spec)["train"][:clips]
    index = decode.test_indices(spec.frames, frames, stride, 1)[0]
    videos, actors = [], []
    for number, (action, scene) in enumerate(layout):
        rng = np.random.default_rng([spec.seed, synthetic.SPLITS.index("train"), number])
        video, actor = synthetic.render_clip(spec, action, scene, rng)
        videos.append(video[index])
        actors.append(actor[index].any(axis=0))
    clip_mask = np.asarray(masks.fame_masks(jnp.asarray(np.stack(videos), jnp.float32) / 255.0, beta,
                                            masks.blur_size_for(spec.height))[0]) > 0.5  # (N, H, W)
    actor = np.stack(actors)
    overlap = (clip_mask & actor).sum()
    return {"fame_on_actor": 100.0 * overlap / clip_mask.sum(), "actor_covered": 100.0 * overlap / actor.sum()}


def _cell(value) -> str:
    return "-" if value is None or value != value else f"{value:.1f}"


def table(rows: list[dict]) -> str:
    lines = ["| variant | generator seed | method | action seen | action unseen | scene seen | scene unseen | H.M. "
             "| FAME on actor | actor covered |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['seed']} | {row['method']} | " + " | ".join(
            _cell(row[key]) for key in ("action_seen", "action_unseen", "scene_seen", "scene_unseen",
                                        "harmonic_mean", "fame_on_actor", "actor_covered")) + " |")
    margins = []
    for variant in dict.fromkeys(row["variant"] for row in rows):
        by_method = {row["method"]: row for row in rows if row["variant"] == variant}
        if {"devias", "two_token"} <= by_method.keys():
            d, t = by_method["devias"], by_method["two_token"]
            margins.append(f"- {variant}: DEVIAS - Two-Token = {d['action_unseen'] - t['action_unseen']:+.1f} "
                           f"unseen action, {d['harmonic_mean'] - t['harmonic_mean']:+.1f} H.M.")
    return "\n".join(lines + ([""] + margins if margins else []))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    known = {variant.name: variant for variant in VARIANTS}
    unknown = [name for name in FLAGS.variants if name not in known]
    if unknown:
        raise app.UsageError(f"--variants: unknown {unknown}; expected some of {list(known)}")
    bad_methods = [m for m in FLAGS.methods if m not in METHODS + ("action_vit",)]
    if bad_methods:
        raise app.UsageError(f"--methods: unknown {bad_methods}")
    recipe = load_config(os.path.join(ROOT, "configs", "demo.py:method=devias"))  # FAME as the demo runs it
    rows = []
    for name in FLAGS.variants:
        variant = known[name]
        data = os.path.abspath(os.path.join(FLAGS.data_dir, name))
        make_dataset(variant, data)
        quality = fame_quality(data, beta=recipe.augment.fame_beta, frames=recipe.model.num_frames,
                               stride=recipe.data.frame_stride)
        for method in FLAGS.methods:
            report = train(method, os.path.join(FLAGS.out, name, method), data)
            rows.append({"variant": name, "seed": variant.seed, "what": variant.what, "method": method,
                         "generator_flags": generator_flags(variant),
                         **{key: report.get(key) for key in ("action_seen", "action_unseen", "scene_seen",
                                                             "scene_unseen", "harmonic_mean", "step")},
                         **quality})
            text = table(rows)
            os.makedirs(FLAGS.out, exist_ok=True)
            with open(os.path.join(FLAGS.out, "table.md"), "w") as handle:
                handle.write(text + "\n")
            with open(os.path.join(FLAGS.out, "results.json"), "w") as handle:
                json.dump(rows, handle, indent=1)
    print(table(rows))
    for variant in (known[name] for name in FLAGS.variants):
        print(f"  {variant.name}: {variant.what}")


if __name__ == "__main__":
    app.run(main)
