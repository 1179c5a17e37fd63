"""Generates the synthetic action/scene video dataset (devias_jax/data/synthetic.py).

  python -m scripts.make_synthetic_dataset --out=data/synthetic --seed=0
  python -m scripts.make_synthetic_dataset --out=/tmp/bench --height=240 --width=320 --frames=150 \
      --train_per_action=4 --splits=train            # 320x240 clips for scripts/benchmark_input.py

Writes videos/<split>/*.mp4 (H.264), masks/<split>/*.npz (true actor masks), train.txt, val_seen.txt,
val_unseen.txt, scene_only.txt ('path action scene', relative to --out) and dataset.json.
"""

from __future__ import annotations

from absl import app, flags

from devias_jax.data import synthetic

_DEFAULT = synthetic.Spec()
flags.DEFINE_string("out", None, "output directory")
flags.DEFINE_integer("seed", _DEFAULT.seed, "everything is a function of this seed")
flags.DEFINE_integer("num_actions", _DEFAULT.num_actions, f"at most {len(synthetic.ACTIONS)}")
flags.DEFINE_integer("num_scenes", _DEFAULT.num_scenes, "background classes")
flags.DEFINE_integer("height", _DEFAULT.height, "frame height (even)")
flags.DEFINE_integer("width", _DEFAULT.width, "frame width (even)")
flags.DEFINE_integer("frames", _DEFAULT.frames, "frames per video")
flags.DEFINE_integer("train_per_action", _DEFAULT.train_per_action, "training clips per action")
flags.DEFINE_integer("val_per_action", _DEFAULT.val_per_action, "val_seen and val_unseen clips per action")
flags.DEFINE_integer("scene_only_per_scene", _DEFAULT.scene_only_per_scene, "scene_only clips per scene")
flags.DEFINE_float("correlation", _DEFAULT.correlation,
                   "probability that a training clip is in its action's home scene (otherwise in one of the "
                   "other scenes, uniformly): 1/num_scenes makes action and scene independent, 0 never uses "
                   "the home scene (anti-correlated), 1 always does")
flags.DEFINE_list("actions", [], f"motion names, one per action class, from {', '.join(synthetic.ACTIONS)} "
                  "(default: the first num_actions)")
flags.DEFINE_float("motion", _DEFAULT.motion, "motion amplitude as a fraction of the frame")
flags.DEFINE_float("actor_size", _DEFAULT.actor_size, "actor radius as a fraction of the frame")
flags.DEFINE_float("clutter", _DEFAULT.clutter, "background pattern and actor stripe contrast in [0, 1]")
flags.DEFINE_enum("background_motion", _DEFAULT.background_motion, synthetic.BACKGROUND_MOTIONS,
                  "static; drift (the texture scrolls); pan (the camera pans: background and actor shift); "
                  "shake (hand-held camera jitter)")
flags.DEFINE_float("background_speed", _DEFAULT.background_speed,
                   "drift/pan: fraction of the frame per frame; shake: jitter std as a fraction of the frame")
flags.DEFINE_enum("actor_shape", _DEFAULT.actor_shape, synthetic.ACTOR_SHAPES, "actor outline (mixed: one per clip)")
flags.DEFINE_enum("scene_hues", _DEFAULT.scene_hues, synthetic.SCENE_HUES,
                  "scene hues: golden (0.618 steps; two of six flat scenes nearly share a hue) or even "
                  "(scene / num_scenes, the demo's)")
flags.DEFINE_list("splits", list(synthetic.SPLITS), "splits to write")
flags.DEFINE_integer("workers", 1, "parallel processes")
flags.mark_flag_as_required("out")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    unknown = set(FLAGS.splits) - set(synthetic.SPLITS)
    if unknown:
        raise app.UsageError(f"--splits: unknown {sorted(unknown)}; expected some of {list(synthetic.SPLITS)}")
    num_actions = len(FLAGS.actions) or FLAGS.num_actions
    spec = synthetic.Spec(num_actions=num_actions, actions=tuple(FLAGS.actions), num_scenes=FLAGS.num_scenes, height=FLAGS.height,
                          width=FLAGS.width, frames=FLAGS.frames, train_per_action=FLAGS.train_per_action,
                          val_per_action=FLAGS.val_per_action, scene_only_per_scene=FLAGS.scene_only_per_scene,
                          correlation=FLAGS.correlation, motion=FLAGS.motion, actor_size=FLAGS.actor_size,
                          clutter=FLAGS.clutter, background_motion=FLAGS.background_motion,
                          background_speed=FLAGS.background_speed, actor_shape=FLAGS.actor_shape,
                          scene_hues=FLAGS.scene_hues, seed=FLAGS.seed)
    summary = synthetic.generate(FLAGS.out, spec, workers=FLAGS.workers, splits=tuple(FLAGS.splits), progress=True)
    counts = ", ".join(f"{split} {count}" for split, count in summary["counts"].items())
    print(f"wrote {FLAGS.out}: {counts} clips, {summary['video_bytes'] / 2**20:.1f} MiB of video, "
          f"{summary['seconds']:.1f} s")
    print(f"train on it with: {synthetic.train_command(FLAGS.out, spec)}")


if __name__ == "__main__":
    app.run(main)
