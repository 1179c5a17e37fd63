"""Small random PyTorch reference models (HuggingFace VideoMAE) and helpers to save them in every
layout the converter reads. Built offline from configs; nothing is downloaded."""

from __future__ import annotations

import collections
import re

import numpy as np
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel

TINY = dict(image_size=32, patch_size=16, num_channels=3, num_frames=4, tubelet_size=2, hidden_size=64,
            num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, hidden_act="gelu",
            layer_norm_eps=1e-6, qv_bias=True)


def hf_model(use_mean_pooling: bool, num_labels: int | None = None, seed: int = 0) -> torch.nn.Module:
    """A random HF VideoMAE with our eps everywhere (HF hard-wires fc_norm to 1e-5)."""
    torch.manual_seed(seed)
    config = VideoMAEConfig(use_mean_pooling=use_mean_pooling, **TINY,
                            **({"num_labels": num_labels} if num_labels else {}))
    model = VideoMAEForVideoClassification(config) if num_labels else VideoMAEModel(config)
    with torch.no_grad():  # random non-zero biases and LN params so every tensor matters
        for name, param in model.named_parameters():
            if name.endswith("bias") or "layernorm" in name or "fc_norm" in name:
                param.add_(0.1 * torch.randn_like(param))
    if num_labels and use_mean_pooling:
        model.fc_norm.eps = 1e-6
    return model.eval()


def hf_forward(model: torch.nn.Module, clips_bthwc: np.ndarray) -> dict[str, np.ndarray]:
    pixel_values = torch.from_numpy(clips_bthwc).permute(0, 1, 4, 2, 3)  # HF wants (B, T, C, H, W)
    with torch.no_grad():
        if isinstance(model, VideoMAEForVideoClassification):
            out = model(pixel_values=pixel_values, output_hidden_states=True)
            tokens = model.videomae(pixel_values=pixel_values).last_hidden_state
            return {"tokens": tokens.numpy(), "logits": out.logits.numpy()}
        return {"tokens": model(pixel_values=pixel_values).last_hidden_state.numpy()}


def to_videomae_names(hf_state: dict[str, torch.Tensor]) -> "collections.OrderedDict[str, torch.Tensor]":
    """Rewrites an HF state dict with the original VideoMAE key names (fused qkv, q/v biases)."""
    out = collections.OrderedDict()
    layers = sorted({int(re.search(r"encoder\.layer\.(\d+)\.", k).group(1)) for k in hf_state if ".layer." in k})
    strip = lambda k: k[len("videomae."):] if k.startswith("videomae.") else k  # noqa: E731
    state = {strip(k): v for k, v in hf_state.items()}
    out["patch_embed.proj.weight"] = state["embeddings.patch_embeddings.projection.weight"]
    out["patch_embed.proj.bias"] = state["embeddings.patch_embeddings.projection.bias"]
    for i in layers:
        p = f"encoder.layer.{i}."
        b = f"blocks.{i}."
        out[b + "norm1.weight"] = state[p + "layernorm_before.weight"]
        out[b + "norm1.bias"] = state[p + "layernorm_before.bias"]
        out[b + "attn.q_bias"] = state[p + "attention.attention.query.bias"]
        out[b + "attn.v_bias"] = state[p + "attention.attention.value.bias"]
        out[b + "attn.qkv.weight"] = torch.cat([state[p + f"attention.attention.{n}.weight"]
                                                for n in ("query", "key", "value")])
        out[b + "attn.proj.weight"] = state[p + "attention.output.dense.weight"]
        out[b + "attn.proj.bias"] = state[p + "attention.output.dense.bias"]
        out[b + "norm2.weight"] = state[p + "layernorm_after.weight"]
        out[b + "norm2.bias"] = state[p + "layernorm_after.bias"]
        out[b + "mlp.fc1.weight"] = state[p + "intermediate.dense.weight"]
        out[b + "mlp.fc1.bias"] = state[p + "intermediate.dense.bias"]
        out[b + "mlp.fc2.weight"] = state[p + "output.dense.weight"]
        out[b + "mlp.fc2.bias"] = state[p + "output.dense.bias"]
    for hf, ours in (("layernorm", "norm"), ("fc_norm", "fc_norm"), ("classifier", "head")):
        for leaf in ("weight", "bias"):
            if f"{hf}.{leaf}" in state:
                out[f"{ours}.{leaf}"] = state[f"{hf}.{leaf}"]
    return out


def pretraining_layout(encoder_state: dict[str, torch.Tensor], dim: int) -> dict:
    """A VideoMAE pre-training file: encoder.* keys plus decoder keys, under 'model'."""
    model = collections.OrderedDict((f"encoder.{k}", v) for k, v in encoder_state.items())
    model["encoder_to_decoder.weight"] = torch.randn(dim // 2, dim)
    model["mask_token"] = torch.zeros(1, 1, dim // 2)
    model["decoder.blocks.0.norm1.weight"] = torch.ones(dim // 2)
    model["decoder.head.weight"] = torch.randn(1536, dim // 2)
    return {"model": model, "epoch": 799}
