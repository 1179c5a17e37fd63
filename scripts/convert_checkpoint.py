"""Converts a PyTorch / HuggingFace / safetensors checkpoint into a directory the trainer and
`devias_jax.load_model` read, without importing torch.

  python -m scripts.convert_checkpoint --config=configs/ucf101.py:method=vit \
      --checkpoint=videomae_ucf101_ft.pth --output=checkpoints/videomae_ucf101
"""

from __future__ import annotations

import os
from typing import Any

from devias_jax.converted import save_converted
from devias_jax.key_maps import ConversionReport


def convert_file(model_config: Any, checkpoint: str, output: str, *, skip: str | None = None,
                 strict: bool = False, allow_inert: tuple[str, ...] = ()) -> ConversionReport:
    """Reads `checkpoint`, maps it onto the model of `model_config`, writes `output`; returns the report."""
    from flax import nnx

    from devias_jax.methods import build_model
    from devias_jax.weights import convert_weights, param_paths

    if os.path.exists(os.path.join(output, "params")):
        raise FileExistsError(f"{output} already holds a converted checkpoint; choose a new output directory")
    model = build_model(model_config, rngs=nnx.Rngs(0))
    params, report = convert_weights(param_paths(model), model_config, checkpoint, skip=skip, strict=strict,
                                     allow_inert=allow_inert)
    save_converted(output, params, {
        "source": os.path.abspath(checkpoint),
        "model": model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config),
        "report": report.to_json(),
    })
    return report


def main(argv: list[str]) -> None:
    from absl import flags

    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    del argv
    flags_ = flags.FLAGS
    model_config = flags_.config.model if "model" in flags_.config else flags_.config
    report = convert_file(model_config, flags_.checkpoint, flags_.output, skip=flags_.skip or None,
                          strict=flags_.strict, allow_inert=tuple(flags_.allow_inert))
    print(report.summary())
    print(f"wrote {flags_.output}")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "recipe file (with :args) whose model to fill")
    flags.DEFINE_string("checkpoint", None, "PyTorch .pth/.pt/.bin or .safetensors file")
    flags.DEFINE_string("output", None, "directory to write (must not exist)")
    flags.DEFINE_string("skip", "", "regex of Flax parameter paths to leave at init (e.g. '^head/')")
    flags.DEFINE_bool("strict", False, "fail if any model parameter is missing from the checkpoint")
    flags.DEFINE_list("allow_inert", [], "extra 'module.Class' names to load as inert data objects")
    flags.mark_flags_as_required(["config", "checkpoint", "output"])
    app.run(main)
