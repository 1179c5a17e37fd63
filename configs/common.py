"""Shared config defaults and the `get_config(arg)` convention.

Every recipe file defines `get_config(arg=None)`; `arg` is the text after the colon in
`--config=configs/ucf101.py:method=devias,variant=B,smoke` (comma-separated `key=value` or bare flags).
Durations are written as `*_epochs` or `*_steps` (-1 = unset) and resolved in the trainer, never here.
Configs come back locked: a misspelt `--config.x.y=...` override fails naming the key.
"""

from __future__ import annotations

from typing import Any, Callable

import ml_collections

# Arguments every recipe accepts, with their defaults. A bare word (`smoke`) means True.
DEFAULT_ARGS: dict[str, Any] = {"method": "vit", "variant": "B", "smoke": False}

# method name -> function that edits the config in place. Later modules register more methods.
METHODS: dict[str, Callable[[ml_collections.ConfigDict], None]] = {}


def register_method(name: str):
    def decorate(fn):
        METHODS[name] = fn
        return fn
    return decorate


def parse_arg(arg: str | None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """'method=devias,variant=B,smoke' -> {'method': 'devias', 'variant': 'B', 'smoke': True}."""
    values = dict(DEFAULT_ARGS if defaults is None else defaults)
    for item in filter(None, (part.strip() for part in (arg or "").split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in values:
            raise ValueError(f"unknown config argument {key!r} in {arg!r}; expected one of {sorted(values)}")
        if not value:
            values[key] = True
        elif isinstance(values[key], bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"config argument {key!r} is a flag; got {value!r}")
            values[key] = value.lower() in ("true", "1")
        else:
            values[key] = type(values[key])(value)
    return values


def model_config(variant: str = "B") -> ml_collections.ConfigDict:
    """The backbone: a VideoMAE ViT (REFERENCE §2). Explicit sizes apply when variant='custom'."""
    return ml_collections.ConfigDict({
        "name": "vit",
        "variant": variant,  # Ti / S / B / L / H / custom
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "mlp_ratio": 4.0,
        "patch_size": 16,
        "tubelet_size": 2,
        "num_frames": 16,
        "img_size": 224,
        "drop_path_rate": 0.1,
        "layer_scale_init": 0.0,
        "pooling": "mean",  # mean (fc_norm) / cls / none
        "num_prefix_tokens": 0,
        "num_suffix_tokens": 0,
        "num_classes": 101,
        "head_init_scale": 0.001,
        "head_dropout": 0.0,
        "dtype": "float32",  # compute dtype: float32 / bfloat16 / float16
        "remat": False,
        "attention_impl": "auto",  # auto / xla / cudnn
    })


def base_config(args: dict[str, Any]) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.method = args["method"]
    config.seed = 0
    config.model = model_config(args["variant"])
    config.init_from = ""  # converted directory or PyTorch file to start from
    return config


def smoke(config: ml_collections.ConfigDict) -> None:
    """Shrinks any recipe to a seconds-long CPU run (tiny ViT, 4 frames of 32x32)."""
    model = config.model
    model.variant = "custom"
    model.update(embed_dim=32, depth=2, num_heads=2, num_frames=4, img_size=32, drop_path_rate=0.0)


def build(arg: str | None, recipe: Callable[[ml_collections.ConfigDict, dict[str, Any]], None] | None = None,
          defaults: dict[str, Any] | None = None) -> ml_collections.ConfigDict:
    """Base config -> recipe edits -> method edits -> smoke -> locked."""
    args = parse_arg(arg, defaults)
    config = base_config(args)
    if recipe is not None:
        recipe(config, args)
    if args["method"] not in METHODS:
        raise ValueError(f"config argument method={args['method']!r}; expected one of {sorted(METHODS)}")
    METHODS[args["method"]](config)
    if args["smoke"]:
        smoke(config)
    config.lock()
    return config


@register_method("vit")
def _vit(config: ml_collections.ConfigDict) -> None:
    """A plain VideoMAE classifier (mean pooling + fc_norm + head)."""
    config.model.name = "vit"
