"""Does a method learn the synthetic motions? A fast in-memory probe for recipe and model questions.

Renders a synthetic action/scene dataset straight into memory (devias_jax/data/synthetic.py, no video
encoding or decoding), trains each method with the trainer's own jitted step (`train.build_step`: FAME
masks, scene mix, matching and losses as in a real run) on one device, and scores action and scene top-1
on val_seen / val_unseen (one centred temporal view, no crops) every `--eval_every` steps.

  python -m scripts.experiments.slot_learning_probe --methods=action_vit,devias --steps=1500 \
      --set=model.tubelet_size=4 --set=augment.scene_mix_prob=0

`--set=key=value` overrides the demo recipe for every method (values are Python literals); `--data`
sets synthetic.Spec fields (`--data=motion=0.3,train_per_action=1000`). Training clips get no spatial
augmentation (the temporal window is drawn like the trainer's). Results print as a table and go to
`--out` as JSON lines (one line per method and evaluation step).

The scene-mix oracle (DEVIAS only): `--mix_background=actor_free` pastes onto an actor-free render of
the background clip, `--mix_paste=true` pastes the true actor frame by frame instead of FAME's clip mask
(the generator knows what FAME guesses; `learning_probe.render_with_oracles`, `oracle_augment`):

  python -m scripts.experiments.slot_learning_probe --methods=devias --mix_background=actor_free --mix_paste=true \
      --set=model.num_frames=4 --steps=2000
"""

from __future__ import annotations

import time

from absl import app, flags

from devias_jax.train_augment import device_augment
from scripts.experiments import learning_probe as probe

flags.DEFINE_list("methods", ["action_vit", "two_token", "devias"], "methods of configs/demo.py")
flags.DEFINE_integer("steps", 1500, "training steps per method")
flags.DEFINE_integer("eval_every", 500, "evaluate every this many steps (and at the end)")
flags.DEFINE_multi_string("set", [], "config override key=value (Python literal), applied to every method")
flags.DEFINE_string("data", "", "synthetic.Spec fields, comma-separated key=value")
flags.DEFINE_integer("seed", 0, "training seed (config.seed)")
flags.DEFINE_string("out", "", "JSON-lines results file (appended)")
flags.DEFINE_enum("mix_background", "clip", ["clip", "actor_free"], "scene-mix oracle: what the actor is pasted onto")
flags.DEFINE_enum("mix_paste", "fame", ["fame", "true"], "scene-mix oracle: FAME's clip mask or the true actor")
FLAGS = flags.FLAGS


def main(argv):
    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    del argv
    spec = probe.spec_from_text(FLAGS.data)
    start = time.time()
    oracle = (FLAGS.mix_background, FLAGS.mix_paste) != ("clip", "fame")
    if oracle and FLAGS.methods != ["devias"]:
        raise ValueError("the scene-mix oracle (--mix_background / --mix_paste) is for --methods=devias")
    train_split = probe.render_with_oracles(spec) if oracle else probe.render_split(spec, "train")
    # the centred test window of the clip geometry every method shares (the overrides included)
    geometry = probe.method_config(FLAGS.methods[0], FLAGS.set, FLAGS.seed, spec.num_actions, spec.num_scenes)
    evals = probe.render_evals(spec, geometry)
    print(f"rendered {len(train_split[0])} training clips in {time.time() - start:.0f}s", flush=True)
    label = FLAGS.data + (f" background={FLAGS.mix_background} paste={FLAGS.mix_paste}" if oracle else "")
    augment = probe.oracle_augment(FLAGS.mix_background, FLAGS.mix_paste) if oracle else device_augment
    # the oracle draws the background itself: the recipe's choice (the demo's is 'still') is set back to
    # the official one, which the oracle accepts, and the oracle's --mix_background decides
    overrides = list(FLAGS.set) + (["augment.scene_mix_background='clip'"] if oracle else [])
    results = {m: probe.run_method(m, spec, train_split, evals, steps=FLAGS.steps, eval_every=FLAGS.eval_every,
                                   overrides=overrides, seed=FLAGS.seed, out_file=FLAGS.out, label=label,
                                   log=lambda line: print(line, flush=True), augment=augment)[-1]
               for m in FLAGS.methods}
    print(f"{'method':<12} {'seen act':>8} {'unseen act':>10} {'seen scn':>8} {'unseen scn':>10}")
    for method, r in results.items():
        print(f"{method:<12} {r['val_seen_action']:8.1f} {r['val_unseen_action']:10.1f} "
              f"{r['val_seen_scene']:8.1f} {r['val_unseen_scene']:10.1f}")


if __name__ == "__main__":
    app.run(main)
