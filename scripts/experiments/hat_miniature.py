"""How much HAT's view choice moves a score: a trained demo model on a miniature HAT release.

  python -m scripts.experiments.hat_miniature --workdir=runs/demo/devias

Writes a miniature HAT release in the released formats (devias_jax/data/miniature_release.py) from the
demo's motions (one action class per motion, actors composited on other videos' inpainted backgrounds,
Rand and Far x 3 splits) and scores the workdir's model on it, each split on its own and their
unweighted mean, three ways: our default views (the first and last windows), the authors' random
window per view (seeded; `loss.official_compat`), and the latter with the authors' action scoring
(top-1 over the action slot's whole unified vector). Prints one table.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import app, flags

from devias_jax import sharding, suites
from devias_jax.config_loading import load_config
from devias_jax.data import miniature_release, streams, synthetic
from devias_jax.evaluators.suites import open_suite
from devias_jax.predict import make_predict_fn, run_predictions
from devias_jax.weights import load_params

flags.DEFINE_string("workdir", "runs/demo/devias", "a trained configs/demo.py run")
flags.DEFINE_string("out", "data/hat_miniature", "where the miniature release is written")
flags.DEFINE_integer("per_class", 10, "foreground videos per action class")
flags.DEFINE_integer("seed", 7, "generator seed of the release (the demo's data is seed 0)")
FLAGS = flags.FLAGS

DEMO_MOTIONS = ("rise", "fall", "grow", "shrink", "sway", "spin")


def main(argv):
    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    del argv
    spec = synthetic.Spec(num_actions=6, actions=DEMO_MOTIONS, num_scenes=6, motion=0.3, clutter=0.0,
                          seed=FLAGS.seed)
    if not os.path.isfile(os.path.join(FLAGS.out, "filelist", "hat", "ucf101", "labels.csv")):
        miniature_release.write_release(FLAGS.out, "ucf101", spec=spec, classes=DEMO_MOTIONS,
                                        per_class=FLAGS.per_class)
    config = load_config("configs/demo.py:method=devias")
    config.data.root = FLAGS.out
    mesh = sharding.make_mesh(1, num_devices=1)
    graphdef, params, _ = load_params(config.model, FLAGS.workdir, mesh, seed=config.seed)
    rows = {}
    for version in ("rand", "far"):
        suite = suites.Suite(name=f"hat_{version}", list=f"filelist/hat/ucf101/{version}", tasks=("action",),
                             group="unseen", kind="hat", root="hat/ucf101", dataset="ucf101")
        for name, official_windows, official_action in (("default views", False, False),
                                                         ("official windows", True, False),
                                                         ("official windows + scoring", True, True)):
            config.loss.official_compat = official_windows  # HAT's views follow the official switch
            predict = make_predict_fn(graphdef, official_action=official_action)
            scores = []
            for _, source in open_suite(config, suite):
                with streams.eval_batches(config, suite.list, batch_size=8, process_index=0, process_count=1,
                                          source=source) as batches:
                    out = run_predictions(predict, params, batches, mesh, len(batches))
                scores.append(100.0 * np.mean(np.asarray(out["action_probs"]).argmax(-1) == out["action"]))
            rows[(version, name)] = scores
    print(f"model {FLAGS.workdir}; release {FLAGS.out} ({FLAGS.per_class} videos per class, {len(DEMO_MOTIONS)} "
          f"classes); action top-1 per split and the mean; jax {jax.__version__}")
    print(f"{'HAT':<6} {'views':<28} {'split 1':>8} {'split 2':>8} {'split 3':>8} {'mean':>8}")
    for (version, name), scores in rows.items():
        print(f"{version:<6} {name:<28} " + " ".join(f"{s:8.1f}" for s in scores) + f" {np.mean(scores):8.1f}")


if __name__ == "__main__":
    app.run(main)
