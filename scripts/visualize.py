"""Analysis plots of a trained model as PNG files in <workdir>/plots/ (config.analysis selects lists):

  attention   attention_<i>_<video>.png: sampled input frames, the action slot's and the scene slot's
              attention over them (DEVIAS; the centre crop of the first test window)
  embedding   umap.png / tsne.png: 2-D embedding of the action and the scene features, coloured by
              action and by scene label (config.analysis.embedding = umap | tsne)
  slots       slot_frequency.png + .json: how often each slot index is chosen as action / scene slot

  python -m scripts.visualize --config=configs/demo.py:method=devias --workdir=runs/demo/devias
  python -m scripts.visualize --config=configs/demo.py:method=devias --workdir=runs/demo/devias \
      --plots=embedding --config.analysis.embedding_list=val_unseen.txt
"""

from __future__ import annotations


def main(argv: list[str]) -> None:
    from absl import app, flags

    from devias_jax import analysis
    from devias_jax.config_validation import validated_cli_config
    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    FLAGS = flags.FLAGS
    validated_cli_config(FLAGS.config, argv)
    unknown = sorted(set(FLAGS.plots) - set(analysis.PLOTS))
    if unknown:
        raise app.UsageError(f"--plots: unknown {unknown}; expected some of {list(analysis.PLOTS)}")
    analysis.run_visualize(FLAGS.config, FLAGS.workdir, plots=FLAGS.plots, output=FLAGS.output)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "recipe file with ':args', as for main.py", lock_config=True)
    flags.DEFINE_string("workdir", None, "trained run directory (its latest checkpoint is read)")
    flags.DEFINE_list("plots", ["attention", "embedding", "slots"], "plots to draw")
    flags.DEFINE_string("output", "", "output folder; '' = <workdir>/plots")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
