"""Checks a config after command-line overrides: every bad value fails naming its key."""

from __future__ import annotations

import re
from typing import Any, Iterable

from absl import app

from devias_jax.methods import MODELS
from devias_jax.suites import SuiteError
from devias_jax.suites import parse as parse_suites
from devias_jax.suites import tables as parse_tables

# dotted key -> allowed values. Modules that add config fields add their choices here.
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.name": tuple(MODELS),
    "model.variant": ("Ti", "S", "B", "L", "H", "custom"),
    "model.pooling": ("mean", "cls", "none"),
    "model.dtype": ("float32", "bfloat16", "float16"),
    "model.attention_impl": ("auto", "xla", "cudnn"),
    "model.slot_softmax_axis": ("slots", "keys"),
    "model.fusion": ("concat", "gap"),
    "model.fusion_variant": ("default", "official"),
    "model.init_bounds": ("std", "absolute"),
    "loss.cos_mode": ("signed", "abs"),
    "augment.scene_mix_background": ("clip", "inpaint", "still"),
    "augment.scene_mix_action": ("foreground", "shared"),
    "augment.scene_mix_partner": ("random", "overlap"),
    "loss.scene_target": ("label", "teacher"),
    "loss.matching": ("exact", "scipy", "greedy", "hard"),
    "data.scene_source": ("list", "teacher", "none"),
    "data.list_format": ("auto", "video", "frames"),
    "data.source": ("videos", "image_folder", "tfds"),
    "data.image_task": ("scene", "action"),
    "eval.scene_topk": (1, 5),
    "analysis.embedding": ("umap", "tsne"),
}
# dotted keys that must be > 0 / >= 0 / within [0, 1).
POSITIVE: list[str] = ["model.embed_dim", "model.depth", "model.num_heads", "model.patch_size",
                       "model.tubelet_size", "model.num_frames", "model.img_size", "model.mlp_ratio",
                       "model.num_scenes", "model.slot_iterations", "model.slot_heads", "model.slot_head_dim",
                       "model.slot_mlp_ratio", "model.slot_init_scale", "model.source_num_actions",
                       "data.frame_stride", "data.test_temporal_views",
                       "data.test_spatial_views", "data.min_frames", "data.prefetch_batches",
                       "augment.fame_beta",
                       "train.batch_size", "train.log_every_steps", "optim.base_lr", "optim.eps",
                       "optim.update_freq", "optim.layer_decay", "checkpoint.keep", "eval.batch_size",
                       "data.batch_timeout_s"]
NON_NEGATIVE: list[str] = ["model.num_actions", "model.num_prefix_tokens", "model.num_suffix_tokens",
                           "model.layer_scale_init", "model.action_slot_index", "model.scene_slot_index",
                           "loss.alpha", "loss.beta", "loss.gamma",
                           "data.short_side",
                           "data.decode_short_side", "data.decode_workers", "data.decode_cache_mb",
                           "augment.rand_augment_m",
                           "augment.rand_augment_n", "augment.rand_augment_mstd", "augment.colour_jitter",
                           "augment.fame_blur_size", "augment.mixup_alpha", "augment.cutmix_alpha",
                           "augment.mix_groups", "optim.min_lr", "optim.weight_decay", "optim.slot_lr_scale",
                           "optim.clip_grad_norm", "checkpoint.keep_best", "sharding.num_devices",
                           "sharding.fsdp_min_size"]
PROBABILITIES: list[str] = ["model.drop_path_rate", "model.head_dropout", "loss.label_smoothing",
                            "data.max_failure_fraction", "augment.fame_beta",
                            "augment.background_erase_max", "augment.mixup_switch_prob",
                            "augment.random_erase_prob", "optim.b1", "optim.b2"]
# dotted keys that are probabilities where 1 is allowed: [0, 1].
CLOSED_PROBABILITIES: list[str] = ["augment.scene_mix_prob", "augment.scene_mix_ramp", "augment.rand_augment_prob", "augment.mixup_prob"]


# config.data fields -> the type each must have (ml_collections checks overrides of existing fields,
# but a recipe can build the section with any value).
DATA_TYPES: dict[str, type | tuple[type, ...]] = {
    "root": str, "train_list": str, "video_ext": str, "classes_file": str, "tfds_name": str,
    "tfds_data_dir": str, "tfds_image_key": str, "tfds_label_key": str, "list_format": str, "scene_source": str,
    "source": str, "image_task": str, "shuffle": bool, "check_files": bool,
    "frame_stride": int, "short_side": int, "decode_short_side": int, "decode_cache_mb": int,
    "test_temporal_views": int, "test_spatial_views": int, "min_frames": int, "decode_workers": int,
    "prefetch_batches": int, "batch_timeout_s": (int, float), "max_failure_fraction": (int, float)}


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "a string", "bool": "True/False", "int": "a whole number",
                        "float": "a number"}.get(k.__name__, k.__name__) for k in kinds)


def _check_types(section: Any, types: dict[str, Any], prefix: str) -> None:
    """Every key of `section` must be one of `types` (names the allowed keys) and of its type."""
    for key in section.keys():
        if key not in types:
            raise ConfigError(f"config.{prefix}.{key} is not a known field; expected one of {sorted(types)}")
        value, kind = section[key], types[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise ConfigError(f"config.{prefix}.{key}={value!r}; expected {_type_name(kind)}")


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
    for key, value in _present(config, CLOSED_PROBABILITIES):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"config.{key}={value!r}; expected a value in [0, 1]")
    _validate_data(config)
    _validate_suites(config)
    _validate_training(config)
    _validate_analysis(config)
    model = config.get("model")
    if model is not None and "num_slots" in model and model.num_slots < 2:
        raise ConfigError(f"config.model.num_slots={model.num_slots}; expected >= 2 (an action and a scene slot)")
    loss = config.get("loss")
    if loss is not None and "teacher_kl_weight" in loss and not (loss.teacher_kl_weight >= 0
                                                                 or loss.teacher_kl_weight == -1):
        raise ConfigError(f"config.loss.teacher_kl_weight={loss.teacher_kl_weight!r}; expected a weight >= 0 "
                          "or -1 (automatic: 1.0, or 4000 with official_compat)")
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


def _validate_suites(config: Any) -> None:
    """config.eval.suites / eval.only: every suite's list, tasks and group (devias_jax/suites.py)."""
    if config.get("eval") is None:
        return
    try:
        parse_suites(config)
        parse_tables(config)
    except SuiteError as error:
        raise ConfigError(str(error)) from None


# Durations: (section, epochs key, steps key); each is given in one unit, the other key -1 (unset).
DURATIONS = (("train", "num_epochs", "num_steps"), ("optim", "warmup_epochs", "warmup_steps"),
             ("train", "eval_every_epochs", "eval_every_steps"),
             ("train", "checkpoint_every_epochs", "checkpoint_every_steps"))


def check_durations(config: Any) -> None:
    """Each duration is given in epochs or in steps, never both (-1 = not given in that unit)."""
    for section, epochs, steps in DURATIONS:
        values = config.get(section)
        if values is None or epochs not in values or steps not in values:
            continue
        if values[epochs] >= 0 and values[steps] >= 0:
            raise ConfigError(f"config.{section}.{epochs}={values[epochs]} and config.{section}.{steps}="
                              f"{values[steps]}: give this duration in one unit (set the other to -1)")


def _validate_training(config: Any) -> None:
    """Cross-field checks of the trainer's sections."""
    check_durations(config)
    optim, sharding, model, augment = (config.get(k) for k in ("optim", "sharding", "model", "augment"))
    if optim is not None and "layer_decay" in optim and optim.layer_decay > 1:
        raise ConfigError(f"config.optim.layer_decay={optim.layer_decay}; expected a value in (0, 1]")
    if sharding is not None and "fsdp" in sharding and not (sharding.fsdp >= 1 or sharding.fsdp == -1):
        raise ConfigError(f"config.sharding.fsdp={sharding.fsdp}; expected >= 1, or -1 for every device")
    for index, rule in enumerate(sharding.get("param_rules", ()) if sharding is not None else ()):
        where = f"config.sharding.param_rules[{index}]={rule!r}"
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)):
            raise ConfigError(f"{where}; expected a pair (regex, 'replicated' | 'fsdp')")
        if rule[1] not in ("replicated", "fsdp"):
            raise ConfigError(f"{where}; the kind must be 'replicated' or 'fsdp'")
        try:
            re.compile(rule[0])
        except re.error as error:
            raise ConfigError(f"{where}; the regex does not compile: {error}") from None
    if (augment is not None and model is not None and "mixup_alpha" in augment
            and (augment.mixup_alpha > 0 or augment.cutmix_alpha > 0)
            and (model.get("name") not in MODELS or MODELS[model.name].learns_scenes)):
        raise ConfigError(f"config.augment.mixup_alpha / cutmix_alpha mix action labels only; model "
                          f"{model.name!r} also learns scenes from its clips (use them with action_vit)")


def _validate_analysis(config: Any) -> None:
    """config.analysis: positive k lists and counts, a positive temperature."""
    analysis = config.get("analysis")
    if analysis is None:
        return
    for key in ("knn_ks", "retrieval_ks"):
        values = analysis.get(key)
        if values is not None and (not len(values) or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                                                          for k in values)):
            raise ConfigError(f"config.analysis.{key}={tuple(values)!r}; expected positive whole numbers")
    for key in ("knn_temperature", "attention_videos", "attention_frames", "embedding_max_points"):
        if key in analysis and not analysis[key] > 0:
            raise ConfigError(f"config.analysis.{key}={analysis[key]!r}; expected a positive number")
    if "batch_size" in analysis and analysis.batch_size < 0:
        raise ConfigError(f"config.analysis.batch_size={analysis.batch_size!r}; expected 0 (eval.batch_size) "
                          "or a positive number")
    for key in ("action_feature", "scene_feature", "retrieval_features"):
        if key in analysis and not str(analysis[key]).strip():
            raise ConfigError(f"config.analysis.{key} is empty; expected a model output name, e.g. 'action_feature'")


def _validate_data(config: Any) -> None:
    """Cross-field checks of config.data / config.augment (clip geometry agrees with the model)."""
    data, model, augment = config.get("data"), config.get("model"), config.get("augment")
    if data is not None:
        _check_types(data, DATA_TYPES, "data")
    if data is not None and "short_side" in data and model is not None and "img_size" in model:
        if data.short_side and data.short_side < model.img_size:
            raise ConfigError(f"config.data.short_side={data.short_side} is smaller than the crop size "
                              f"config.model.img_size={model.img_size}")
    if data is not None and data.get("source", "videos") != "videos":
        if data.get("scene_source") == "teacher":
            raise ConfigError(f"config.data.source={data.source!r} labels each image with its class; set "
                              "config.data.scene_source='list' (the online teacher runs on video lists)")
        if data.source == "tfds" and not data.get("tfds_name"):
            raise ConfigError("config.data.source='tfds' needs config.data.tfds_name (e.g. 'places365_small')")
    if augment is not None and "crop_area" in augment:
        low, high = augment.crop_area
        if not 0 < low <= high <= 1:
            raise ConfigError(f"config.augment.crop_area={tuple(augment.crop_area)}; expected 0 < min <= max <= 1")
        low, high = augment.crop_aspect
        if not 0 < low <= high:
            raise ConfigError(f"config.augment.crop_aspect={tuple(augment.crop_aspect)}; expected 0 < min <= max")
    if augment is not None and augment.get("fame_blur_size", 0) % 2 == 0 and augment.get("fame_blur_size", 0):
        raise ConfigError(f"config.augment.fame_blur_size={augment.fame_blur_size}; expected 0 or an odd size")


def validated_cli_config(config: Any, argv: list[str]) -> Any:
    """For absl entry points: `config` after validate(), with stray positional arguments and config
    errors turned into absl's UsageError (a one-line message, no traceback)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        validate(config)
    except ConfigError as error:
        raise app.UsageError(str(error)) from None
    return config
