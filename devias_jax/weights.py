"""Putting weights into an NNX model: from a converted directory or straight from a PyTorch file."""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from devias_jax import convert
from devias_jax.models import torch_key_fn


def param_paths(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """{'blocks/0/attn/qkv/kernel': shape, ...} for every nnx.Param of the model."""
    return {"/".join(map(str, path)): tuple(var.shape)
            for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def flat_params(model: nnx.Module) -> dict[str, np.ndarray]:
    return {"/".join(map(str, path)): np.asarray(var[...])
            for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def assign_params(model: nnx.Module, params: Mapping[str, Any]) -> None:
    """Overwrites the model's parameters named in `params` ('/'-joined paths), in place."""
    state = nnx.state(model, nnx.Param)
    for path, var in nnx.to_flat_state(state):
        key = "/".join(map(str, path))
        if key in params:
            var[...] = jnp.asarray(params[key], dtype=var.dtype)
    nnx.update(model, state)


def convert_weights(model: nnx.Module, model_config: Any, checkpoint: str, *, skip: str | None = None,
                    strict: bool = False, allow_inert: tuple[str, ...] = ()
                    ) -> tuple[dict[str, np.ndarray], convert.ConversionReport]:
    """Reads a PyTorch/HF/safetensors file and maps it onto this model's parameter tree."""
    weights, dropped = convert.normalize_state_dict(convert.read_checkpoint(checkpoint, allow_inert))
    return convert.map_to_params(param_paths(model), weights, torch_key=torch_key_fn(model_config),
                                 skip=skip, strict=strict, dropped=dropped)


def load_weights(model: nnx.Module, model_config: Any, checkpoint: str, *, skip: str | None = None,
                 strict: bool = False) -> convert.ConversionReport:
    """Loads a converted directory or a PyTorch file into `model` in place; returns what happened."""
    if os.path.isdir(checkpoint):
        # Converted params already use Flax paths and layouts: identity key map, no transposes.
        params, report = convert.map_to_params(param_paths(model), convert.load_converted(checkpoint),
                                               torch_key=lambda path: path, transform=lambda path, v: v,
                                               skip=skip, strict=strict)
    else:
        params, report = convert_weights(model, model_config, checkpoint, skip=skip, strict=strict)
    assign_params(model, params)
    return report
