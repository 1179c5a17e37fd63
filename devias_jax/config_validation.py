"""Checks a config after command-line overrides: every bad value fails naming its key."""

from __future__ import annotations

from typing import Any, Iterable

# dotted key -> allowed values. Modules that add config fields add their choices here.
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.name": ("vit",),
    "model.variant": ("Ti", "S", "B", "L", "H", "custom"),
    "model.pooling": ("mean", "cls", "none"),
    "model.dtype": ("float32", "bfloat16", "float16"),
    "model.attention_impl": ("auto", "xla", "cudnn"),
}
# dotted keys that must be > 0 / >= 0 / within [0, 1).
POSITIVE: list[str] = ["model.embed_dim", "model.depth", "model.num_heads", "model.patch_size",
                       "model.tubelet_size", "model.num_frames", "model.img_size", "model.mlp_ratio"]
NON_NEGATIVE: list[str] = ["model.num_classes", "model.num_prefix_tokens", "model.num_suffix_tokens",
                           "model.layer_scale_init"]
PROBABILITIES: list[str] = ["model.drop_path_rate", "model.head_dropout"]


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def _lookup(config: Any, key: str) -> tuple[bool, Any]:
    node = config
    for part in key.split("."):
        if part not in node:
            return False, None
        node = node[part]
    return True, node


def _present(config: Any, keys: Iterable[str]):
    for key in keys:
        found, value = _lookup(config, key)
        if found:
            yield key, value


def validate(config: Any) -> None:
    """Raises ConfigError for the first bad value, naming the key, the value and what was expected."""
    for key, value in _present(config, CHOICES):
        if value not in CHOICES[key]:
            raise ConfigError(f"config.{key}={value!r}; expected one of {list(CHOICES[key])}")
    for key, value in _present(config, POSITIVE):
        if not value > 0:
            raise ConfigError(f"config.{key}={value!r}; expected a positive number")
    for key, value in _present(config, NON_NEGATIVE):
        if value < 0:
            raise ConfigError(f"config.{key}={value!r}; expected a number >= 0")
    for key, value in _present(config, PROBABILITIES):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"config.{key}={value!r}; expected a value in [0, 1)")
    model = config.get("model")
    if model is not None and "embed_dim" in model and model.variant == "custom":
        if model.embed_dim % model.num_heads:
            raise ConfigError(f"config.model.embed_dim={model.embed_dim} is not divisible by "
                              f"config.model.num_heads={model.num_heads}")
    if model is not None and "img_size" in model and model.img_size % model.patch_size:
        raise ConfigError(f"config.model.img_size={model.img_size} is not a multiple of "
                          f"config.model.patch_size={model.patch_size}")
    if model is not None and "num_frames" in model and model.num_frames % model.tubelet_size:
        raise ConfigError(f"config.model.num_frames={model.num_frames} is not a multiple of "
                          f"config.model.tubelet_size={model.tubelet_size}")
