"""The registry: every method declared once, with the model it builds, its loss, what the train step
computes on device for it, its PyTorch checkpoint layout and the config settings its `method=` name sets.

`METHODS` (by the recipes' `method=` name) is the one table; `MODELS` (by `config.model.name`, what the
trainer, the scene teacher and the checkpoint converter see) is derived from it. `model_of` resolves a
config's model once; `build_model`, `torch_key_fn` and `prepare_fn` read that entry for callers that need
one thing of it. A new baseline is one `Method` in `METHODS`, with a new `Model` unless it trains an
existing one with other settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
from flax import nnx

from devias_jax import objectives
from devias_jax.key_maps import default_torch_key
from devias_jax.models import baselines, devias, vit

Objective = Callable[[Any, Mapping[str, jax.Array], Mapping[str, jax.Array]], tuple[jax.Array, objectives.Metrics]]


def _never(config: Any) -> bool:
    return False


def _as_stored(weights: Mapping[str, Any], model_config: Any) -> tuple[dict[str, Any], list[str]]:
    return dict(weights), []


@dataclasses.dataclass(frozen=True)
class Model:
    """One `config.model.name`: how it is built, trained and read from a PyTorch checkpoint."""

    name: str
    build: Callable[[Any, nnx.Rngs], nnx.Module]  # (config.model, rngs) -> module
    loss: Objective  # (run config, outputs, targets) -> (loss, metrics)
    learns_scenes: bool  # False: its loss reads action targets only, so mixup / cutmix may mix them
    mask_targets: Callable[[Any], bool] = _never  # run config -> the loss needs the clip's FAME mask targets
    torch_key: Callable[[str], str | None] = default_torch_key  # Flax path -> PyTorch key (None: not stored)
    # (normalised PyTorch weights, config.model) -> (weights the key map reads, keys dropped on purpose)
    prepare: Callable[[Mapping[str, Any], Any], tuple[dict[str, Any], list[str]]] = _as_stored


@dataclasses.dataclass(frozen=True)
class Method:
    """One `method=` of the recipes: the model it trains and the settings it gives `config.model`."""

    name: str
    model: Model
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # config.model fields
    scene_mix: bool = False  # keeps the recipe's scene-mix probability

    def configure(self, config: Any) -> None:
        config.model.name = self.model.name
        config.model.update(dict(self.settings))
        if not self.scene_mix:
            config.augment.scene_mix_prob = 0.0  # the recipes' rho is DEVIAS's; baselines mix only with +fame


def _build_vit(model_config: Any, rngs: nnx.Rngs) -> nnx.Module:
    return vit.VisionTransformer(vit.vit_config_from(model_config, num_classes=int(model_config.num_actions)), rngs=rngs)


# Baselines (REFERENCE §9, supplementary C): models/baselines.py. DEVIAS: models/devias.py.
_VIT = Model("vit", _build_vit, objectives.action_objective, learns_scenes=False)
_DEVIAS = Model("devias", devias.build_devias, objectives.devias_objective, learns_scenes=True,
                mask_targets=objectives.uses_mask_losses, torch_key=devias.torch_key,
                prepare=devias.prepare_checkpoint)
_ONE_TOKEN = Model("one_token", baselines.build_one_token, objectives.two_task_objective, learns_scenes=True)
_TWO_TOKEN = Model("two_token", baselines.build_two_token, objectives.two_task_objective, learns_scenes=True,
                   torch_key=baselines.two_token_torch_key)
_ACTION_VIT = Model("action_vit", baselines.build_action_vit, objectives.action_objective, learns_scenes=False)
_SCENE_VIT = Model("scene_vit", baselines.build_scene_vit, objectives.scene_objective, learns_scenes=True)
_DEVIAS_DOWNSTREAM = Model("devias_downstream", devias.build_downstream, objectives.action_objective,
                           learns_scenes=False, torch_key=devias.torch_key, prepare=devias.prepare_checkpoint)

METHODS: dict[str, Method] = {method.name: method for method in (
    # A plain VideoMAE classifier (mean pooling + fc_norm + head).
    Method("vit", _VIT),
    # DEVIAS: backbone -> slot attention -> unified head + action mask decoder; matching + L_DE/AMD/AG/cos.
    Method("devias", _DEVIAS, {"pooling": "none"}, scene_mix=True),
    # One-Token: pooled feature -> separate action and scene heads, or a unified C_a + C_s head trained
    # with L_DE (supplementary Table 13).
    Method("one_token", _ONE_TOKEN, {"unified_head": False}),
    Method("one_token_unified", _ONE_TOKEN, {"unified_head": True}),
    # Two-Token: class token -> action head, appended scene token -> scene head (or one unified head).
    Method("two_token", _TWO_TOKEN, {"pooling": "none", "unified_head": False}),
    Method("two_token_unified", _TWO_TOKEN, {"pooling": "none", "unified_head": True}),
    # Naive Action / Scene ViT: a VideoMAE classifier on action labels / on scene labels (ground truth or
    # the teacher's argmax).
    Method("action_vit", _ACTION_VIT),
    Method("scene_vit", _SCENE_VIT),
    # Transfer from DEVIAS: backbone + slots with a concat (or GAP) fusion head on num_classes targets.
    Method("devias_downstream", _DEVIAS_DOWNSTREAM, {"pooling": "none"}),
)}

MODELS: dict[str, Model] = {method.model.name: method.model for method in METHODS.values()}


def model_of(model_config: Any) -> Model:
    """The Model named by `model_config.name` (an ml_collections `config.model`)."""
    name = model_config.name
    if name not in MODELS:
        raise ValueError(f"config.model.name={name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the module named by `model_config.name` (an ml_collections `config.model`)."""
    return model_of(model_config).build(model_config, rngs)


def torch_key_fn(model_config: Any) -> Callable[[str], str | None]:
    """Maps a '/'-joined Flax parameter path to the PyTorch key holding it (None: never in a checkpoint)."""
    return model_of(model_config).torch_key


def prepare_fn(model_config: Any) -> Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[str]]]:
    """weights -> (weights, dropped keys) for this model's checkpoint layout (identity by default): e.g.
    checks and collapses DEVIAS's weight-tied slot copies before the key map runs."""
    prepare = model_of(model_config).prepare
    return lambda weights: prepare(weights, model_config)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A `+name` after a method (`method=two_token+fame`): settings on top of the method's."""

    name: str
    settings: Mapping[str, Any]  # dotted config key ('augment.scene_mix_prob') -> value

    def apply(self, config: Any) -> None:
        for key, value in self.settings.items():
            section, field = key.split(".")
            config[section][field] = value


VARIANTS: dict[str, Variant] = {variant.name: variant for variant in (
    # FAME scene mixing as plain augmentation, beta = rho = 0.5 (supplementary Tables 19-20).
    Variant("fame", {"augment.fame_beta": 0.5, "augment.scene_mix_prob": 0.5}),
    # Background Erasing, lambda ~ U[0, 0.3) (supplementary Tables 19-20).
    Variant("be", {"augment.background_erase_max": 0.3}),
    # The VideoMAE recipe's mixup 0.8 / cutmix 1.0 / random erasing 0.25 / label smoothing 0.1 (Naive
    # Action ViT w/ Aug., supplementary Table 17).
    Variant("aug", {"augment.mixup_alpha": 0.8, "augment.cutmix_alpha": 1.0, "augment.random_erase_prob": 0.25,
                    "loss.label_smoothing": 0.1}),
)}
