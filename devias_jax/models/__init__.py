"""Model registry: `config.model.name` -> Flax NNX module, plus how its parameters are named in PyTorch."""

from __future__ import annotations

from typing import Any, Callable

from flax import nnx

from devias_jax.models import vit

# name -> (builder(model_config, rngs) -> module, flax path -> PyTorch key or None,
#          prepare(weights, model_config) -> (weights, dropped keys) or None)
_REGISTRY: dict[str, tuple[Callable[..., nnx.Module], Callable[[str], str | None], Callable[..., Any] | None]] = {}


def register(name: str, builder: Callable[..., nnx.Module], torch_key: Callable[[str], str | None],
             prepare: Callable[..., Any] | None = None) -> None:
    """`prepare` (optional) rewrites a normalised PyTorch state dict before the key map runs (e.g. checks
    and collapses weight-tied copies) and returns it with the list of keys it dropped on purpose."""
    _REGISTRY[name] = (builder, torch_key, prepare)


def _lookup(model_config: Any):
    name = model_config.name
    if name not in _REGISTRY:
        raise ValueError(f"config.model.name={name!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the module named by `model_config.name` (an ml_collections `config.model`)."""
    return _lookup(model_config)[0](model_config, rngs)


def torch_key_fn(model_config: Any) -> Callable[[str], str | None]:
    """Maps a '/'-joined Flax parameter path to the PyTorch key holding it (None: never in a checkpoint)."""
    return _lookup(model_config)[1]


def prepare_fn(model_config: Any) -> Callable[[Any], tuple[dict, list[str]]]:
    """weights -> (weights, dropped keys) for this model's checkpoint layout (identity by default)."""
    prepare = _lookup(model_config)[2]
    if prepare is None:
        return lambda weights: (dict(weights), [])
    return lambda weights: prepare(weights, model_config)


def _build_vit(model_config: Any, rngs: nnx.Rngs) -> nnx.Module:
    return vit.VisionTransformer(vit.vit_config_from(model_config), rngs=rngs)


def _vit_torch_key(path: str) -> str | None:
    from devias_jax.convert import default_torch_key

    return default_torch_key(path)


register("vit", _build_vit, _vit_torch_key)


# DEVIAS and the baselines (REFERENCE §3-§5, §9).
from devias_jax.models import baselines as _baselines, devias as _devias  # noqa: E402

for _name, (_builder, _torch_key, _prepare) in {**_devias.REGISTRY, **_baselines.REGISTRY}.items():
    register(_name, _builder, _torch_key, _prepare)
