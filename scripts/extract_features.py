"""Writes per-video features of a trained model over one list as .npy files: any named model output
(action_feature, scene_feature, slots, attention, ... or gap = the mean of the backbone tokens), averaged
over the test views (--per_view keeps every view), with the action / scene labels and video ids.

  python -m scripts.extract_features --config=configs/demo.py:method=devias --workdir=runs/demo/devias \
      --list=val_seen.txt --names=action_feature,scene_feature,gap

Reads the latest checkpoint in --workdir (else config.init_from). Output (default
<workdir>/features/<list name>/): <name>.npy for each output, action.npy / scene.npy (-1 unknown),
index.npy (list row), video_ids.npy / paths.npy, and features.json (metadata, shapes, video ids).
"""

from __future__ import annotations


def main(argv: list[str]) -> None:
    from absl import flags

    from devias_jax import analysis
    from devias_jax.config_validation import validated_cli_config
    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    FLAGS = flags.FLAGS
    validated_cli_config(FLAGS.config, argv)
    analysis.run_extract(FLAGS.config, FLAGS.workdir, list_path=FLAGS.list, names=FLAGS.names,
                         output=FLAGS.output, per_view=FLAGS.per_view)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "recipe file with ':args', as for main.py", lock_config=True)
    flags.DEFINE_string("workdir", None, "trained run directory (its latest checkpoint is read)")
    flags.DEFINE_string("list", "", "list to extract (relative to data.root); '' = config.analysis.knn_test_list")
    flags.DEFINE_list("names", ["action_feature", "scene_feature"], "model outputs to write ('gap' = token mean)")
    flags.DEFINE_string("output", "", "output folder; '' = <workdir>/features/<list name>")
    flags.DEFINE_bool("per_view", False, "keep each test view: arrays (videos, views, ...)")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
