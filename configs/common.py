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


def loss_config() -> ml_collections.ConfigDict:
    """Objective and slot matching (REFERENCE §4-§5). Owned by devias_jax/losses.py and matching.py."""
    return ml_collections.ConfigDict({})


def data_config() -> ml_collections.ConfigDict:
    """Annotation lists, decoding, views (REFERENCE §7). Owned by devias_jax/data/."""
    return ml_collections.ConfigDict({})


def augment_config() -> ml_collections.ConfigDict:
    """Host-side clip augmentation and on-device FAME masks / scene mix / BE / mixup (REFERENCE §6-§7).
    Owned by devias_jax/data/augment.py and devias_jax/masks.py."""
    return ml_collections.ConfigDict({})


def train_config() -> ml_collections.ConfigDict:
    """Loop, batch and durations (REFERENCE §8). Durations: `*_epochs` or `*_steps`, -1 = unset."""
    return ml_collections.ConfigDict({
        "batch_size": 96,  # global: 12 per GPU x 8 in the official recipe
        "num_epochs": 100,
        "num_steps": -1,  # overrides num_epochs when >= 0
        "log_every_steps": 20,
        "eval_every_epochs": 5,
        "eval_every_steps": -1,
        "checkpoint_every_steps": 1000,
        "checkpoint_every_epochs": -1,
        "plot_curves": True,
    })


def optim_config() -> ml_collections.ConfigDict:
    """AdamW with layer-wise lr decay (REFERENCE §8); lr values are per 256 clips and scaled."""
    return ml_collections.ConfigDict({
        "base_lr": 5e-4,
        "min_lr": 1e-6,
        "warmup_epochs": 5,
        "warmup_steps": -1,
        "weight_decay": 0.05,
        "b1": 0.9,
        "b2": 0.999,
        "eps": 1e-8,
        "layer_decay": 0.75,
        "slot_lr_scale": 0.1,  # replaces the layer scale for every slot-module parameter
        "slot_param_regex": r"^slot_attention/",
        "no_decay_regex": r"(^|/)(bias|q_bias|v_bias|cls_token|suffix_token|pos_embed)$",
        "clip_grad_norm": 0.0,  # 0 = off (official: off)
        "update_freq": 1,  # gradient accumulation steps
    })


def sharding_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "fsdp": 1,  # size of the fsdp mesh axis; -1 = all devices; the data axis takes the rest
        "fsdp_min_size": 2 ** 16,  # smaller parameters stay replicated under FSDP
        "param_rules": [],  # [(regex, 'replicated' | 'fsdp')], first match wins; empty = by `fsdp`
    })


def distributed_config() -> ml_collections.ConfigDict:
    """Multi-host: explicit coordinator settings, or auto-detection on TPU pods / SLURM / Open MPI."""
    return ml_collections.ConfigDict({
        "auto": True,
        "coordinator_address": "",
        "num_processes": 1,
        "process_id": -1,
        "local_device_ids": "",
    })


def checkpoint_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "keep": 2,  # latest checkpoints kept
        "keep_best": 1,  # best checkpoints kept by eval.best_metric
        "async_save": True,
    })


def base_config(args: dict[str, Any]) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.method = args["method"]
    config.seed = 0
    config.model = model_config(args["variant"])
    config.loss = loss_config()
    config.data = data_config()
    config.augment = augment_config()
    config.train = train_config()
    config.optim = optim_config()
    config.sharding = sharding_config()
    config.distributed = distributed_config()
    config.checkpoint = checkpoint_config()
    config.init_from = ""  # converted directory or PyTorch file to start from (after resume)
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
