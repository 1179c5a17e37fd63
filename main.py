"""devias-jax entry point: one command on a CPU, a GPU, many GPUs or a TPU pod.

  python main.py --config=configs/ucf101.py:method=devias --workdir=runs/ucf101
  python main.py --config=configs/demo.py:smoke --workdir=runs/demo --config.model.dtype=float32

The console shows progress and results; add absl's --verbosity=0 for the libraries' INFO logs.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from devias_jax import evaluators  # the package's index only: no JAX until a mode runs
from devias_jax.config_loading import define_config_flag

CONFIG_HELP = "recipe file, optionally with ':args' (e.g. configs/ucf101.py:method=devias,variant=B,smoke)"
flags.DEFINE_string("workdir", None, "directory for checkpoints, logs and reports")
# --mode: train, eval (the suites evaluator), info, and one mode per other evaluator module
# (devias_jax/evaluators/: knn, retrieval, ...), each described by its module docstring's first sentence.
EVALUATOR_MODES = [name for name in evaluators.names() if name != "suites"]
flags.DEFINE_enum("mode", "train", ["train", "eval", "info", *EVALUATOR_MODES],
                  "train: train (resuming from --workdir) and evaluate; eval: evaluate the workdir's latest "
                  "checkpoint (or config.init_from) on config.eval.suites; info: build the model and print its "
                  "outputs; " + "; ".join(f"{name}: {evaluators.summary(name)}" for name in EVALUATOR_MODES))
flags.mark_flags_as_required(["workdir"])  # and --config: define_config_flag
FLAGS = flags.FLAGS


# Each mode imports its module on use: --help answers without loading JAX, and no mode loads the others'.


def run_info(config, workdir: str) -> None:
    """Builds the model, runs one forward pass on random clips and prints parameter counts and outputs."""
    import jax
    import numpy as np

    from devias_jax import load_model

    predictor = load_model(config, config.init_from or None, strict=False)
    params = jax.tree.leaves(predictor.state)
    clips = np.random.default_rng(config.seed).standard_normal((2,) + predictor.input_shape).astype(np.float32)
    outputs = predictor(clips)
    print(f"model {config.model.name} ({config.model.variant}): "
          f"{sum(p.size for p in params) / 1e6:.2f}M parameters on {jax.devices()[0].platform}")
    for name, value in outputs.items():
        print(f"  {name:>14}: {tuple(value.shape)} {value.dtype}")
    summary = {"parameters": int(sum(p.size for p in params)),
               "outputs": {k: list(v.shape) for k, v in outputs.items()}}
    with open(os.path.join(workdir, "info.json"), "w") as handle:
        json.dump(summary, handle, indent=2)


def run_train(config, workdir: str) -> None:
    from devias_jax.train import train_and_evaluate

    train_and_evaluate(config, workdir)


def run_evaluator(name: str):
    def run(config, workdir: str) -> None:
        from devias_jax.evaluate import run_evaluator as evaluate

        evaluate(name, config, workdir)

    return run


MODES = {"train": run_train, "eval": run_evaluator("suites"), "info": run_info,
         **{name: run_evaluator(name) for name in EVALUATOR_MODES}}


def main(argv: list[str]) -> None:
    from devias_jax.config_validation import validated_cli_config
    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    config = validated_cli_config(FLAGS.config, argv)
    os.makedirs(FLAGS.workdir, exist_ok=True)
    MODES[FLAGS.mode](config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main, argv=define_config_flag(sys.argv, CONFIG_HELP))  # the config is built once, here
