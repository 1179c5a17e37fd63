"""The one way weights become parameters.

Any source (a trainer workdir, its checkpoints/ folder or one step; a directory written by
scripts/convert_checkpoint.py; a PyTorch / HuggingFace / safetensors file) -> the parameters of a model,
placed with the shardings the caller gives. A trainer checkpoint restores only the parameters (never the
optimizer state), each straight onto its target sharding (orbax partial restore); the other sources are
host files, read on the host and then placed.

  restore_params(params, source, model_config, shardings=...)   fill a params tree (init_from, in place of
                                                                 initial values)
  load_params(model_config, source, mesh)                        (graphdef, params) of a model built from
                                                                 its config, every parameter from `source`
  load_weights(model, model_config, source)                      into an NNX model in place (load_model)
  run_source(config, workdir)                                    which source a run's eval / analysis reads
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from flax import nnx

from devias_jax import checkpoint, converted, key_maps, sharding, torch_reader
from devias_jax.methods import build_model, prepare_fn, torch_key_fn
from devias_jax.param_rules import flat_values, path_str


def param_paths(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """{'blocks/0/attn/qkv/kernel': shape, ...} for every nnx.Param of the model."""
    return {"/".join(map(str, path)): tuple(var.shape)
            for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def flat_params(model: nnx.Module) -> dict[str, np.ndarray]:
    """{'/'-joined path: host array} for every nnx.Param of the model."""
    return {"/".join(map(str, path)): np.asarray(var[...])
            for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def convert_weights(template: Mapping[str, tuple[int, ...]], model_config: Any, path: str, *,
                    skip: str | None = None, strict: bool = False, allow_inert: tuple[str, ...] = ()
                    ) -> tuple[dict[str, np.ndarray], key_maps.ConversionReport]:
    """Reads a PyTorch/HF/safetensors file and maps it onto `template` ({flax path: shape}) on the host."""
    weights, dropped = key_maps.normalize_state_dict(torch_reader.read_checkpoint(path, allow_inert))
    weights, dropped_by_model = prepare_fn(model_config)(weights)  # e.g. DEVIAS's tied slot copies
    return key_maps.map_to_params(template, weights, torch_key=torch_key_fn(model_config),
                                  skip=skip, strict=strict, dropped=[*dropped, *dropped_by_model])


def _same_path(path: str) -> str:
    return path


def _same_value(path: str, value: Any) -> Any:
    return value


def _host_params(source: str, template: Mapping[str, tuple[int, ...]], model_config: Any, *, skip: str | None,
                 strict: bool) -> tuple[dict[str, np.ndarray], key_maps.ConversionReport]:
    """A converted directory or a PyTorch / HF / safetensors file, read on the host and mapped onto `template`."""
    if os.path.isdir(source):
        if not converted.is_converted_dir(source):
            raise torch_reader.CheckpointError(f"{source}: neither a training workdir/checkpoint nor a "
                                               "converted checkpoint directory")
        # Converted params already use Flax paths and layouts: identity key map, no transposes.
        return key_maps.map_to_params(template, converted.load_converted(source), torch_key=_same_path,
                                      transform=_same_value, skip=skip, strict=strict)
    return convert_weights(template, model_config, source, skip=skip, strict=strict)


def restore_params(params: Any, source: str, model_config: Any, *, shardings: Any = None, skip: str | None = None,
                   strict: bool = False) -> tuple[Any, key_maps.ConversionReport]:
    """Fills `params` (a nested dict of arrays or jax.ShapeDtypeStructs, Flax paths) from `source`.

    Returns the same tree with every parameter the source holds replaced by its value (in the leaf's
    dtype, placed with `shardings`: a tree like `params`, default each leaf's own sharding), and the
    report. Parameters matching the regex `skip` and those the source lacks keep their leaf (with
    `strict`, a missing one is an error); a shape mismatch is always an error, all of them listed."""
    flat = flat_values(params)
    template = {path: tuple(leaf.shape) for path, leaf in flat.items()}
    placement = (flat_values(shardings) if shardings is not None
                 else {path: getattr(leaf, "sharding", None) for path, leaf in flat.items()})
    state_dir = checkpoint.find_training_checkpoint(source) if os.path.isdir(source) else None
    if state_dir is not None:
        # Shapes from the metadata first, so a mismatch fails before anything is read.
        chosen, report = key_maps.map_to_params(template, checkpoint.stored_param_shapes(state_dir), torch_key=_same_path,
                                                transform=_same_value, skip=skip, strict=strict)
        loaded = checkpoint.restore_stored_params(state_dir, {
            path: jax.ShapeDtypeStruct(template[path], flat[path].dtype, sharding=placement[path]) for path in chosen})
    else:
        host, report = _host_params(source, template, model_config, skip=skip, strict=strict)
        loaded = {path: jax.device_put(np.asarray(value, flat[path].dtype), placement[path])
                  for path, value in host.items()}
    return jax.tree_util.tree_map_with_path(lambda keypath, leaf: loaded.get(path_str(keypath), leaf), params), report


def run_source(config: Any, workdir: str) -> str:
    """What a run's evaluation or analysis reads: the latest training checkpoint in `workdir` (its step
    folder), else config.init_from; raises when neither exists."""
    state = checkpoint.find_training_checkpoint(workdir) if os.path.isdir(workdir) else None
    if state is not None:
        return os.path.dirname(state)  # <workdir>/checkpoints/<step>
    if config.get("init_from"):
        return config.init_from
    raise FileNotFoundError(f"no training checkpoint in {workdir!r} and no config.init_from to read weights from")


def abstract_model(model_config: Any, seed: int = 0) -> tuple[nnx.GraphDef, Any]:
    """(graphdef, parameter shapes as a nested dict of ShapeDtypeStructs): nothing is initialised."""
    abstract = nnx.eval_shape(lambda: build_model(model_config, rngs=nnx.Rngs(seed)))
    graphdef, state = nnx.split(abstract, nnx.Param)
    return graphdef, state.to_pure_dict()


def load_params(model_config: Any, source: str, mesh: Any, *, sharding_config: Any = None, seed: int = 0
                ) -> tuple[nnx.GraphDef, Any, key_maps.ConversionReport]:
    """(graphdef, params, report) of the model `model_config` builds, every parameter read from `source`
    (strict: a missing one is an error). Params are replicated over `mesh`, or placed by
    `sharding_config` (config.sharding: the training run's FSDP rules, replicated when fsdp is 1)."""
    graphdef, abstract = abstract_model(model_config, seed)
    shardings = (sharding.param_shardings(abstract, mesh, sharding_config) if sharding_config is not None
                 else jax.tree.map(lambda _: sharding.replicated(mesh), abstract))
    params, report = restore_params(abstract, source, model_config, shardings=shardings, strict=True)
    return graphdef, params, report


def load_weights(model: nnx.Module, model_config: Any, source: str, *, skip: str | None = None,
                 strict: bool = False) -> key_maps.ConversionReport:
    """Loads `source` into an NNX model in place (parameters it lacks keep their values); returns the report."""
    state = nnx.state(model, nnx.Param)
    params, report = restore_params(state.to_pure_dict(), source, model_config, skip=skip, strict=strict)
    state.replace_by_pure_dict(params)
    nnx.update(model, state)
    return report
