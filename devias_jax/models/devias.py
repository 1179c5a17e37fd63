"""DEVIAS (REFERENCE §3-§5): ViT backbone -> disentangling encoder (slots) -> unified head + action mask decoder.

The module holds the parts of a VideoMAE ViT encoder (vit.encoder_parts; no pooling, final `norm` on
the tokens) and three more children: `slot_attention` (the disentangling encoder; `agg_block` in the
authors' PyTorch model), `mask_predictor` (the action mask decoder) and `head` (one Linear D -> C_a + C_s
applied to every slot).
Parameter paths read `patch_embed/...`, `blocks/i/...`, `norm/...`, `slot_attention/...`,
`mask_predictor/...`, `head/...`; `torch_key` maps them to the official names.

`DEVIASDownstream` keeps the backbone and the slots and replaces the head by a fusion head
(models/heads.py) for transfer learning.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from devias_jax.key_maps import default_torch_key
from devias_jax.models.heads import FUSIONS, ConcatFusionHead, GAPHead
from devias_jax.models.slot_attention import SlotAttention, SlotAttentionConfig
from devias_jax.models.vit import ViTConfig, encode, encoder_parts, trunc_normal_linear, vit_config_from
from devias_jax.torch_reader import CheckpointError


# ----------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------


def class_counts(model_config: Any) -> tuple[int, int]:
    """(C_a, C_s) from `config.model.num_actions` / `config.model.num_scenes`, checked."""
    num_actions, num_scenes = int(model_config.num_actions), int(model_config.num_scenes)
    if num_actions < 1:
        raise ValueError(f"config.model.num_actions={num_actions}; expected the number of action classes (>= 1)")
    if num_scenes < 1:
        raise ValueError(f"config.model.num_scenes={num_scenes}; expected the number of scene classes (>= 1)")
    return num_actions, num_scenes


def backbone_config_from(model_config: Any) -> ViTConfig:
    """The DEVIAS backbone: no pooling, no head, no extra tokens; the final `norm` acts on every token."""
    return vit_config_from(model_config, pooling="none", num_classes=0, num_prefix_tokens=0,
                           num_suffix_tokens=0, head_dropout=0.0)


def slot_config_from(model_config: Any) -> SlotAttentionConfig:
    """SlotAttentionConfig from `config.model` (slot_* fields), width taken from the backbone."""
    return SlotAttentionConfig(
        dim=backbone_config_from(model_config).embed_dim,
        num_slots=int(model_config.num_slots),
        num_iterations=int(model_config.slot_iterations),
        num_heads=int(model_config.slot_heads),
        head_dim=int(model_config.slot_head_dim),
        mlp_ratio=float(model_config.slot_mlp_ratio),
        softmax_axis=str(model_config.slot_softmax_axis),
        tied=bool(model_config.slot_tied),
        latent_init_scale=float(model_config.slot_init_scale),
        init_bounds=str(model_config.init_bounds),
        dtype=str(model_config.dtype),
    )


@dataclasses.dataclass(frozen=True)
class DEVIASConfig:
    vit: ViTConfig  # pooling 'none', no head: the final `norm` is applied to every token
    slots: SlotAttentionConfig
    num_actions: int
    num_scenes: int
    mask_decoder_dims: tuple[int, ...] = (512, 256)
    head_dropout: float = 0.0  # dropout before the unified head (official 0.5 on UCF-101)
    head_init_scale: float = 0.001

    @property
    def num_outputs(self) -> int:
        return self.num_actions + self.num_scenes

    @property
    def mask_size(self) -> int:
        """Spatial tokens of one frame: (H/16) * (W/16) (196 at 224)."""
        _, height, width = self.vit.grid
        return height * width


def devias_config_from(model_config: Any) -> DEVIASConfig:
    num_actions, num_scenes = class_counts(model_config)
    dims = tuple(int(d) for d in model_config.mask_decoder_dims)
    if not dims or min(dims) < 1:
        raise ValueError(f"config.model.mask_decoder_dims={dims}; expected positive hidden widths, e.g. (512, 256)")
    return DEVIASConfig(
        vit=backbone_config_from(model_config),
        slots=slot_config_from(model_config),
        num_actions=num_actions,
        num_scenes=num_scenes,
        mask_decoder_dims=dims,
        head_dropout=float(model_config.head_dropout),
        head_init_scale=float(model_config.head_init_scale),
    )


# ----------------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------------


class MaskDecoder(nnx.Dict):
    """Action mask decoder: MLP D -> 512 -> 256 -> (H/16 * W/16) with ReLU between; returns LOGITS.

    Its Linears are entries fc1, fc2, fc3 ... (paths `mask_predictor/fc1/...`: the PyTorch Sequential's
    decoder.0, .2, .4, with ReLUs in between). The probability (sigmoid) is taken by the caller, so the
    loss can use a stable log-sigmoid.
    """

    def __init__(self, dim: int, hidden_dims: tuple[int, ...], mask_size: int, rngs: nnx.Rngs, dtype,
                 init_bounds: str):
        widths = (dim, *hidden_dims, mask_size)
        super().__init__({f"fc{index}": trunc_normal_linear(fan_in, fan_out, rngs, dtype, init_bounds)
                          for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]), start=1)})

    def __call__(self, slots: jax.Array) -> jax.Array:
        layers = list(self.values())
        x = slots
        for layer in layers[:-1]:
            x = jax.nn.relu(layer(x))
        return layers[-1](x).astype(jnp.float32)  # (B, K, mask_size)


def take_slot(values: jax.Array, slot: jax.Array) -> jax.Array:
    """values (B, K, ...) and slot indices (B,) -> values[b, slot[b]] (B, ...)."""
    index = slot.reshape((-1,) + (1,) * (values.ndim - 1))
    return jnp.take_along_axis(values, index.astype(jnp.int32), axis=1)[:, 0]


def select_slots(logits: jax.Array, num_actions: int) -> tuple[jax.Array, jax.Array]:
    """Inference-time slot roles (REFERENCE §4): softmax over all C_a + C_s outputs of each slot; the action
    slot is the argmax over slots of the max action probability, the scene slot (chosen independently,
    it may coincide) the argmax of the max scene probability. logits (B, K, C) -> two (B,) int32."""
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)  # (B, K, C)
    action_slot = jnp.argmax(probs[..., :num_actions].max(axis=-1), axis=1)
    scene_slot = jnp.argmax(probs[..., num_actions:].max(axis=-1), axis=1)
    return action_slot.astype(jnp.int32), scene_slot.astype(jnp.int32)


class DEVIAS(nnx.Module):
    """clips (B, T, H, W, 3) normalised -> dict (shapes with K slots, N tokens, P = H/16 * W/16):

    tokens (B, N, D), slots (B, K, D), attention (B, K, N), logits (B, K, C_a + C_s),
    action_mask (B, K, P) probabilities and action_mask_logits (B, K, P), action_slot / scene_slot (B,)
    (inference selection), action_logits (B, C_a) / scene_logits (B, C_s) of the selected slots (and the
    action slot's whole unified vector, action_slot_logits (B, C_a + C_s)) and
    action_feature / scene_feature (B, D) = the selected slots.

    The backbone is the ViT's encoder parts (vit.encoder_parts), held under their own names.
    """

    def __init__(self, cfg: DEVIASConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        dim, dtype, bounds = cfg.vit.embed_dim, cfg.vit.compute_dtype, cfg.vit.init_bounds
        self.patch_embed, self.cls_token, self.suffix_token, self.blocks, self.norm = encoder_parts(cfg.vit, rngs)
        self.slot_attention = SlotAttention(cfg.slots, rngs=rngs)
        self.mask_predictor = MaskDecoder(dim, cfg.mask_decoder_dims, cfg.mask_size, rngs, dtype, bounds)
        self.head_dropout = nnx.Dropout(cfg.head_dropout)
        self.head = trunc_normal_linear(dim, cfg.num_outputs, rngs, dtype, bounds, init_scale=cfg.head_init_scale)

    def encode(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return encode(self.cfg.vit, self, clips, train, rngs)  # (B, N, D), after the final norm

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        cfg = self.cfg
        tokens = self.encode(clips, train, rngs)  # (B, N, D)
        slots, attention = self.slot_attention(tokens)  # (B, K, D), (B, K, N)
        logits = self.head(self.head_dropout(slots, deterministic=not train, rngs=rngs)).astype(jnp.float32)
        mask_logits = self.mask_predictor(slots)  # (B, K, P)
        action_slot, scene_slot = select_slots(logits, cfg.num_actions)
        return {
            "tokens": tokens,
            "slots": slots,
            "attention": attention,
            "logits": logits,  # (B, K, C_a + C_s)
            "action_mask": jax.nn.sigmoid(mask_logits),
            "action_mask_logits": mask_logits,
            "action_slot": action_slot,
            "scene_slot": scene_slot,
            "action_slot_logits": take_slot(logits, action_slot),  # (B, C_a + C_s): the official scoring's
            "action_logits": take_slot(logits, action_slot)[:, :cfg.num_actions],  # (B, C_a)
            "scene_logits": take_slot(logits, scene_slot)[:, cfg.num_actions:],  # (B, C_s)
            "action_feature": take_slot(slots, action_slot),  # (B, D)
            "scene_feature": take_slot(slots, scene_slot),
        }


FUSION_VARIANTS = ("default", "official")


def picks_slots_with_source_head(model_config: Any) -> bool:
    """The official downstream concat head chooses slots with the DEVIAS source's unified head, which
    must then come from `init_from` (it is never learned)."""
    return (model_config.name == "devias_downstream" and model_config.fusion == "concat"
            and model_config.fusion_variant == "official")


class DEVIASDownstream(nnx.Module):
    """DEVIAS backbone + slots with a fusion head for transfer (REFERENCE §9 Table 5).

    fusion 'concat', variant 'default': the slots at `action_slot_index` / `scene_slot_index` (fixed roles:
    the paper finds the inference assignment constant, supplementary F.7) -> ConcatFusionHead.
    Variant 'official' (the authors' downstream model): the source's unified `head` (D -> source C_a + C_s,
    loaded with the backbone and never trained: its logits are gradient-stopped and `configs/downstream.py`
    keeps it out of weight decay) picks the slots per clip as DEVIAS's inference does (they may coincide),
    then the official ConcatFusionHead (a LayerNorm per selected slot, the action layers for both slots).
    fusion 'gap': mean of the backbone tokens -> GAPHead (no slots are built). Returns action_logits (B, C)
    and features (and action_slot / scene_slot (B,)). The backbone is held as in DEVIAS.
    """

    def __init__(self, cfg: DEVIASConfig, fusion: str, num_classes: int, action_slot_index: int,
                 scene_slot_index: int, fusion_norm: bool, official: bool = False, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.patch_embed, self.cls_token, self.suffix_token, self.blocks, self.norm = encoder_parts(cfg.vit, rngs)
        if fusion not in FUSIONS:
            raise ValueError(f"config.model.fusion={fusion!r}; expected one of {FUSIONS}")
        for key, index in (("action_slot_index", action_slot_index), ("scene_slot_index", scene_slot_index)):
            if not 0 <= index < cfg.slots.num_slots:
                raise ValueError(f"config.model.{key}={index}; expected a slot index in [0, {cfg.slots.num_slots})")
        self.fusion = fusion
        self.slot_indices = (int(action_slot_index), int(scene_slot_index))
        dim, dtype = cfg.vit.embed_dim, cfg.vit.compute_dtype
        official = official and fusion == "concat"
        # the source's unified head, only to choose slots (cfg.num_actions is the source's C_a here)
        self.head = (trunc_normal_linear(dim, cfg.num_outputs, rngs, dtype, cfg.vit.init_bounds,
                                         init_scale=cfg.head_init_scale) if official else None)
        if fusion == "concat":
            self.slot_attention = SlotAttention(cfg.slots, rngs=rngs)
            self.fusion_head = ConcatFusionHead(dim, num_classes, rngs=rngs, dropout=cfg.head_dropout,
                                                fusion_norm=fusion_norm, init_scale=cfg.head_init_scale,
                                                dtype=dtype, init_bounds=cfg.vit.init_bounds, official=official)
        else:
            self.slot_attention = None
            self.fusion_head = GAPHead(dim, num_classes, rngs=rngs, dropout=cfg.head_dropout,
                                       init_scale=cfg.head_init_scale, dtype=dtype,
                                       init_bounds=cfg.vit.init_bounds)

    def choose_slots(self, slots: jax.Array) -> tuple[jax.Array, jax.Array]:
        """slots (B, K, D) -> (action slot, scene slot) indices (B,): fixed, or by the frozen unified head."""
        if self.head is None:
            fixed = jnp.ones(slots.shape[:1], jnp.int32)
            return fixed * self.slot_indices[0], fixed * self.slot_indices[1]
        logits = jax.lax.stop_gradient(self.head(slots).astype(jnp.float32))  # (B, K, C_a + C_s)
        return select_slots(logits, self.cfg.num_actions)

    def encode(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return encode(self.cfg.vit, self, clips, train, rngs)  # (B, N, D), after the final norm

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        tokens = self.encode(clips, train, rngs)  # (B, N, D)
        out = {"tokens": tokens}
        if self.slot_attention is not None:
            slots, attention = self.slot_attention(tokens)  # (B, K, D), (B, K, N)
            action_slot, scene_slot = self.choose_slots(slots)
            action_feature, scene_feature = take_slot(slots, action_slot), take_slot(slots, scene_slot)  # (B, D)
            logits, fused = self.fusion_head(action_feature, scene_feature, train=train, rngs=rngs)
            out.update(slots=slots, attention=attention, scene_feature=scene_feature, fused_feature=fused,
                       action_feature=action_feature, action_slot=action_slot, scene_slot=scene_slot)
        else:
            logits, pooled = self.fusion_head(tokens, train=train, rngs=rngs)
            out.update(action_feature=pooled)
        out["action_logits"] = logits  # (B, C)
        return out


# ----------------------------------------------------------------------------------------------------
# The authors' checkpoint layout
# ----------------------------------------------------------------------------------------------------

# Flax path (after the generic '/' -> '.', kernel/scale -> weight rule) -> official PyTorch key.
_TORCH_RENAMES = [
    (re.compile(r"^slot_attention\.latents$"), "agg_block.latents"),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.attn\.(norm|norm_context)\."), r"agg_block.layers.\1.0.\2."),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.attn\.(to_q|to_k|to_v)\."), r"agg_block.layers.\1.0.fn.\2."),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.attn\.to_out\."), r"agg_block.layers.\1.0.fn.to_out.0."),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.ff\.norm\."), r"agg_block.layers.\1.2.norm."),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.ff\.fc1\."), r"agg_block.layers.\1.2.fn.net.0."),
    (re.compile(r"^slot_attention\.layers\.(\d+)\.ff\.fc2\."), r"agg_block.layers.\1.2.fn.net.3."),
    (re.compile(r"^slot_attention\.last_norm\."), "agg_block.last_layer.0."),
    (re.compile(r"^mask_predictor\.fc(\d+)\."), lambda m: f"mask_predictor.decoder.{2 * (int(m.group(1)) - 1)}."),
]


def torch_key(flax_path: str) -> str | None:
    """'slot_attention/layers/0/attn/to_q/kernel' -> 'agg_block.layers.0.0.fn.to_q.weight', and so on."""
    key = default_torch_key(flax_path)
    for pattern, replacement in _TORCH_RENAMES:
        key, count = pattern.subn(replacement, key)
        if count:
            break
    return key


_SLOT_LAYER_KEY = re.compile(r"^agg_block\.layers\.(\d+)\.(.+)$")
_UNUSED_KEYS = re.compile(r"^mask_predictor\.conv")  # a convolutional decoder older checkpoints carry, unused


def prepare_checkpoint(weights: Mapping[str, np.ndarray], model_config: Any) -> tuple[dict[str, np.ndarray], list[str]]:
    """Official DEVIAS weights -> weights this model reads, plus the keys deliberately dropped.

    The official encoder ties its iterations by putting the same module object at every layer index, so
    the file repeats the tied weights under agg_block.layers.0 .. M-1. The copies are verified equal and
    index 0 is kept. The number of stored layers must equal `config.model.slot_iterations` (it is the
    iteration count the model was trained with). Unused mask_predictor.conv* keys are dropped.
    """
    dropped = sorted(k for k in weights if _UNUSED_KEYS.match(k))
    kept = {k: v for k, v in weights.items() if not _UNUSED_KEYS.match(k)}
    layers: dict[int, dict[str, np.ndarray]] = collections.defaultdict(dict)
    for key, value in kept.items():
        match = _SLOT_LAYER_KEY.match(key)
        if match:
            layers[int(match.group(1))][match.group(2)] = value
    if not layers:
        return kept, dropped
    slots = slot_config_from(model_config)
    indices = sorted(layers)
    if indices != list(range(slots.num_iterations)):
        raise CheckpointError(
            f"the checkpoint's slot attention has layers {indices} ({len(indices)} iterations) but "
            f"config.model.slot_iterations={slots.num_iterations}; set it to {len(indices)} to match the "
            "trained model")
    if slots.tied:
        reference = layers[0]
        for index in indices[1:]:
            if set(layers[index]) != set(reference):
                raise CheckpointError(f"slot attention layer {index} holds keys {sorted(layers[index])}, "
                                      f"layer 0 holds {sorted(reference)}")
            differing = [name for name in reference if not np.array_equal(layers[index][name], reference[name])]
            if differing:
                raise CheckpointError(
                    f"the checkpoint's slot attention is not weight-tied: layer {index} differs from layer 0 in "
                    f"{differing[:4]}; set config.model.slot_tied=False to load one parameter set per iteration")
            dropped.extend(f"agg_block.layers.{index}.{name}" for name in layers[index])
        kept = {k: v for k, v in kept.items() if not (_SLOT_LAYER_KEY.match(k) and
                                                      int(_SLOT_LAYER_KEY.match(k).group(1)) > 0)}
    return kept, sorted(dropped)


# ----------------------------------------------------------------------------------------------------
# Builders (the registry: devias_jax/methods.py)
# ----------------------------------------------------------------------------------------------------


def build_devias(model_config: Any, rngs: nnx.Rngs) -> DEVIAS:
    return DEVIAS(devias_config_from(model_config), rngs=rngs)


def build_downstream(model_config: Any, rngs: nnx.Rngs) -> DEVIASDownstream:
    num_classes = int(model_config.num_actions)
    if num_classes < 1:
        raise ValueError(f"config.model.num_actions={num_classes}; the downstream model needs the number of "
                         "target classes (>= 1)")
    variant = str(model_config.fusion_variant)
    if variant not in FUSION_VARIANTS:
        raise ValueError(f"config.model.fusion_variant={variant!r}; expected one of {FUSION_VARIANTS}")
    # The unified head the official variant chooses slots with is the source's: C_a = its action classes
    cfg = devias_config_from(model_config)
    official = picks_slots_with_source_head(model_config)
    if official:
        source_actions = int(model_config.source_num_actions)
        if source_actions < 1:
            raise ValueError(f"config.model.source_num_actions={source_actions}; expected the DEVIAS source's "
                             "action classes (400 for Kinetics-400)")
        cfg = dataclasses.replace(cfg, num_actions=source_actions)
    return DEVIASDownstream(cfg, str(model_config.fusion), num_classes,
                            int(model_config.action_slot_index), int(model_config.scene_slot_index),
                            bool(model_config.fusion_norm), official, rngs=rngs)
