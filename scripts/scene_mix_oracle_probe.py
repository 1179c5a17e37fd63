"""Is it FAME or scene mixing itself? DEVIAS with scene mixing made ideal, on the learning probe's data.

A diagnostic for the learning issue: the generator knows what FAME has to guess, so the probe can mix
with the truth and see how much of the action accuracy that scene mixing costs is FAME's (its masks
leave the background clip's own actor visible, keep a ring of the actor's own scene, clip moving
actors) and how much is mixing's:

  --background=actor_free  paste onto an actor-free render of the background clip (same scene and
                           texture, no actor: the generator's scene-only clip for that draw)
  --paste=true             paste the true actor, frame by frame, instead of FAME's clip mask

Everything else is the probe's (devias_jax/learning_probe.py: the trainer's own step, FAME targets for
the mask losses, matching and losses unchanged); only the scene mix's pixels are replaced. The extra
inputs travel as extra channels of the training clips (actor-free clip: 3, true mask: 1) and are split
off inside the step before the trainer's augmentation sees the clip (`learning_probe.render_with_oracles`,
`learning_probe.oracle_augment`).

  python scripts/scene_mix_oracle_probe.py --background=actor_free --paste=true --seed=0 \
      --data=train_per_action=300,clutter=0.0,motion=0.3,correlation=0.1667 --set=model.num_frames=4
"""

from __future__ import annotations

import os
import sys
import time
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from devias_jax import learning_probe as probe  # noqa: E402
from devias_jax import train  # noqa: E402

flags.DEFINE_enum("background", "clip", ["clip", "actor_free"], "what the actor is pasted onto")
flags.DEFINE_enum("paste", "fame", ["fame", "true"], "which pixels are pasted: FAME's clip mask or the true actor")
flags.DEFINE_integer("steps", 2000, "training steps")
flags.DEFINE_integer("eval_every", 500, "evaluate every this many steps (and at the end)")
flags.DEFINE_multi_string("set", [], "config override key=value (Python literal)")
flags.DEFINE_string("data", "", "synthetic.Spec fields, comma-separated key=value")
flags.DEFINE_integer("seed", 0, "training seed (config.seed)")
flags.DEFINE_string("out", "", "JSON-lines results file (appended)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    spec = probe.spec_from_text(FLAGS.data)
    start = time.time()
    train_split = probe.render_with_oracles(spec)
    config = probe.method_config("devias", FLAGS.set, FLAGS.seed, spec.num_actions, spec.num_scenes)
    if not config.augment.scene_mix_prob:
        raise ValueError("augment.scene_mix_prob is 0: there is no scene mix to make ideal")
    evals = probe.render_evals(spec, config)
    print(f"rendered {len(train_split[0])} training clips with their oracles in {time.time() - start:.0f}s",
          flush=True)
    label = f"{FLAGS.data} background={FLAGS.background} paste={FLAGS.paste}"
    with mock.patch.object(train, "device_augment", probe.oracle_augment(FLAGS.background, FLAGS.paste)):
        records = probe.run_method("devias", spec, train_split, evals, steps=FLAGS.steps,
                                   eval_every=FLAGS.eval_every, overrides=FLAGS.set, seed=FLAGS.seed,
                                   out_file=FLAGS.out, label=label, log=lambda line: print(line, flush=True))
    last = records[-1]
    print(f"devias ({label}): unseen action {last['val_unseen_action']:.1f}, seen action "
          f"{last['val_seen_action']:.1f}")


if __name__ == "__main__":
    app.run(main)
