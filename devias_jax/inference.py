"""The inference API: `load_model(config, checkpoint)` -> a jitted callable returning named outputs."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from flax import nnx

from devias_jax import config_validation
from devias_jax.config_loading import load_config
from devias_jax.methods import build_model
from devias_jax.weights import load_weights


class Predictor:
    """A model with its weights: `predictor(clips)` maps normalised clips (B, T, H, W, 3) float32 to a
    dict of named outputs (for the ViT: `tokens` (B, N, D), plus `pooled` and `logits` with a head)."""

    def __init__(self, model: nnx.Module, model_config: Any, report: Any = None):
        self.model = model
        self.model_config = model_config
        self.report = report
        self.graphdef, self.state = nnx.split(model)

        @jax.jit
        def forward(state, clips):
            return nnx.merge(self.graphdef, state)(clips, train=False)

        self._forward = forward

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, 3) the model expects."""
        cfg = self.model_config
        return (cfg.num_frames, cfg.img_size, cfg.img_size, 3)

    def __call__(self, clips: Any) -> dict[str, jax.Array]:
        clips = np.asarray(clips) if not isinstance(clips, jax.Array) else clips
        if clips.ndim != 5 or tuple(clips.shape[1:]) != self.input_shape:
            raise ValueError(f"clips must have shape (B, {', '.join(map(str, self.input_shape))}) "
                             f"(normalised, channels-last); got {tuple(clips.shape)}")
        return self._forward(self.state, clips.astype(np.float32))


def load_model(config: Any, checkpoint: str | None = None, *, strict: bool = True, seed: int = 0,
               overrides: Mapping[str, Any] | None = None) -> Predictor:
    """Builds `config.model` and loads `checkpoint` into it.

    config: a ConfigDict (full run config or its `model` section) or a recipe spec such as
    'configs/ucf101.py:method=devias'. checkpoint: a directory written by
    scripts/convert_checkpoint.py, or a PyTorch .pth/.pt/.bin or .safetensors file (VideoMAE,
    HuggingFace or DEVIAS layout), converted on the fly; None keeps random weights. With `strict`,
    every model parameter must come from the checkpoint.
    """
    if isinstance(config, str):
        config = load_config(config, dict(overrides or {}))
    elif overrides:
        raise ValueError("overrides are only applied to a config given as a recipe path")
    config_validation.validate(config)
    model_config = config.model if "model" in config else config
    model = build_model(model_config, rngs=nnx.Rngs(seed))
    report = None
    if checkpoint is not None:
        report = load_weights(model, model_config, checkpoint, strict=strict)
    return Predictor(model, model_config, report)
