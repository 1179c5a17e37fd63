"""The models of config.model.name: build one, and name its parameters as the PyTorch checkpoints do.

Each model is declared in devias_jax/methods.py (MODELS); these functions read that table.
"""

from __future__ import annotations

from typing import Any, Callable

from flax import nnx


def _model(model_config: Any):
    # imported here: devias_jax.methods imports this package's modules
    from devias_jax.methods import model_of

    return model_of(model_config)


def build_model(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the module named by `model_config.name` (an ml_collections `config.model`)."""
    return _model(model_config).build(model_config, rngs)


def torch_key_fn(model_config: Any) -> Callable[[str], str | None]:
    """Maps a '/'-joined Flax parameter path to the PyTorch key holding it (None: never in a checkpoint)."""
    return _model(model_config).torch_key


def prepare_fn(model_config: Any) -> Callable[[Any], tuple[dict, list[str]]]:
    """weights -> (weights, dropped keys) for this model's checkpoint layout (identity by default): e.g.
    checks and collapses DEVIAS's weight-tied slot copies before the key map runs."""
    prepare = _model(model_config).prepare
    return lambda weights: prepare(weights, model_config)
