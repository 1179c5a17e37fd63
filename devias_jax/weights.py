"""Putting weights into an NNX model: from a converted directory or straight from a PyTorch file."""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from devias_jax import convert
from devias_jax.checkpoint import find_training_checkpoint, load_training_params
from devias_jax.models import prepare_fn, torch_key_fn


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


def convert_weights(template: Mapping[str, tuple[int, ...]], model_config: Any, checkpoint: str, *,
                    skip: str | None = None, strict: bool = False, allow_inert: tuple[str, ...] = ()
                    ) -> tuple[dict[str, np.ndarray], convert.ConversionReport]:
    """Reads a PyTorch/HF/safetensors file and maps it onto `template` ({flax path: shape})."""
    weights, dropped = convert.normalize_state_dict(convert.read_checkpoint(checkpoint, allow_inert))
    weights, dropped_by_model = prepare_fn(model_config)(weights)  # e.g. DEVIAS's tied slot copies
    return convert.map_to_params(template, weights, torch_key=torch_key_fn(model_config),
                                 skip=skip, strict=strict, dropped=[*dropped, *dropped_by_model])


def read_params(checkpoint: str, template: Mapping[str, tuple[int, ...]], model_config: Any, *,
                skip: str | None = None, strict: bool = False) -> tuple[dict[str, np.ndarray], convert.ConversionReport]:
    """Parameters for `template` ({flax path: shape}) from any source we read: a trainer workdir or
    checkpoint, a converted directory, or a PyTorch / HF / safetensors file."""
    if os.path.isdir(checkpoint):
        training_state = find_training_checkpoint(checkpoint)
        if training_state is not None:
            stored = convert.flatten(load_training_params(training_state))
        elif convert.is_converted_dir(checkpoint):
            stored = convert.load_converted(checkpoint)
        else:
            raise convert.CheckpointError(f"{checkpoint}: neither a training workdir/checkpoint nor a "
                                          "converted checkpoint directory")
        # Stored params already use Flax paths and layouts: identity key map, no transposes.
        return convert.map_to_params(template, stored, torch_key=lambda path: path,
                                     transform=lambda path, value: value, skip=skip, strict=strict)
    return convert_weights(template, model_config, checkpoint, skip=skip, strict=strict)


def load_weights(model: nnx.Module, model_config: Any, checkpoint: str, *, skip: str | None = None,
                 strict: bool = False) -> convert.ConversionReport:
    """Loads any checkpoint `read_params` reads into `model` in place; returns what happened."""
    params, report = read_params(checkpoint, param_paths(model), model_config, skip=skip, strict=strict)
    assign_params(model, params)
    return report


def load_replicated(model_config: Any, checkpoint: str, mesh: Any, *, seed: int = 0) -> tuple[Any, Any, convert.ConversionReport]:
    """(graphdef, params replicated over `mesh`, report) for inference: the model built from
    `model_config` with every parameter read from `checkpoint` (strict: a missing one is an error)."""
    import jax

    from devias_jax import sharding
    from devias_jax.models import build_model
    from devias_jax.param_rules import flat_values, path_str

    # Shapes only: every parameter comes from the checkpoint, so nothing is initialised.
    abstract = nnx.eval_shape(lambda: build_model(model_config, rngs=nnx.Rngs(seed)))
    graphdef, state = nnx.split(abstract, nnx.Param)
    state = state.to_pure_dict()
    template = {path: tuple(v.shape) for path, v in flat_values(state).items()}
    loaded, report = read_params(checkpoint, template, model_config, strict=True)
    params = jax.tree_util.tree_map_with_path(
        lambda keypath, leaf: np.asarray(loaded[path_str(keypath)], leaf.dtype), state)
    return graphdef, jax.device_put(params, sharding.replicated(mesh)), report
