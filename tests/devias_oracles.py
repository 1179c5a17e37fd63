"""A small PyTorch reference of the DEVIAS disentangling encoder, written from REFERENCE §3 with the
authors' module names, so its state_dict has the official checkpoint keys (agg_block.layers.i.0.fn.to_q
..., weight-tied iterations repeated under every index). Used as a parity oracle; nothing is downloaded."""

from __future__ import annotations

import collections

import numpy as np
import torch
from torch import nn


class _PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module, with_context: bool = False):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)  # eps 1e-5
        self.norm_context = nn.LayerNorm(dim) if with_context else None

    def forward(self, x, context=None):
        if self.norm_context is not None:
            return self.fn(self.norm(x), self.norm_context(context))
        return self.fn(self.norm(x))


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, softmax_over_slots: bool):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.softmax_over_slots = heads, head_dim, softmax_over_slots
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, slots, tokens):
        batch, num_slots, _ = slots.shape
        split = lambda t: t.reshape(batch, t.shape[1], self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.to_q(slots)), split(self.to_k(tokens)), split(self.to_v(tokens))  # (B, h, L, d)
        logits = q @ k.transpose(-1, -2) * self.head_dim ** -0.5  # (B, h, K, N)
        attn = logits.softmax(dim=2 if self.softmax_over_slots else 3)
        weights = attn / (attn.sum(dim=-1, keepdim=True) + 1e-7)
        out = (weights @ v).transpose(1, 2).reshape(batch, num_slots, -1)
        return self.to_out(out), attn


class _FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class SlotEncoderOracle(nn.Module):
    """Iterated cross-attention; tied iterations reuse the same module objects at every layer index."""

    def __init__(self, dim: int, num_slots: int, iterations: int, heads: int, head_dim: int, tied: bool = True,
                 softmax_over_slots: bool = True):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_slots, dim))
        make_attn = lambda: _PreNorm(dim, _CrossAttention(dim, heads, head_dim, softmax_over_slots), True)  # noqa: E731
        make_ff = lambda: _PreNorm(dim, _FeedForward(dim))  # noqa: E731
        shared = (make_attn(), make_ff())
        self.layers = nn.ModuleList()
        for _ in range(iterations):
            attn, ff = shared if tied else (make_attn(), make_ff())
            self.layers.append(nn.ModuleList([attn, nn.Identity(), ff, nn.Identity()]))
        self.last_layer = nn.Sequential(nn.LayerNorm(dim))

    def forward(self, tokens):
        x = self.latents.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        attn = None
        for cross_attn, _, ff, _ in self.layers:
            update, attn = cross_attn(x, tokens)
            x = x + update
            x = x + ff(x)
        return self.last_layer(x), attn.mean(dim=1)


class MaskDecoderOracle(nn.Module):
    def __init__(self, dim: int, hidden: tuple[int, int], mask_size: int):
        super().__init__()
        self.decoder = nn.Sequential(nn.Linear(dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                     nn.Linear(hidden[1], mask_size), nn.Sigmoid())

    def forward(self, slots):
        return self.decoder(slots)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial LayerNorm and bias values so that every tensor matters in a parity test."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias") or "norm" in name or "last_layer" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return module


class DEVIASOracle(nn.Module):
    """HF VideoMAE backbone (final layernorm, no pooling) + slot encoder + unified head + mask decoder."""

    def __init__(self, backbone: nn.Module, dim: int, num_outputs: int, mask_size: int, **slot_kwargs):
        super().__init__()
        self.backbone = backbone
        self.agg_block = SlotEncoderOracle(dim, **slot_kwargs)
        self.mask_predictor = MaskDecoderOracle(dim, (24, 16), mask_size)
        self.head = nn.Linear(dim, num_outputs)

    @torch.no_grad()
    def outputs(self, clips_bthwc: np.ndarray) -> dict[str, np.ndarray]:
        pixel_values = torch.from_numpy(clips_bthwc).permute(0, 1, 4, 2, 3)
        tokens = self.backbone(pixel_values=pixel_values).last_hidden_state
        slots, attention = self.agg_block(tokens)
        return {"tokens": tokens.numpy(), "slots": slots.numpy(), "attention": attention.numpy(),
                "logits": self.head(slots).numpy(), "action_mask": self.mask_predictor(slots).numpy()}

    def official_state_dict(self, backbone_names: dict) -> "collections.OrderedDict[str, torch.Tensor]":
        """The official DEVIAS layout: backbone keys at top level, agg_block.*, mask_predictor.*, head.*."""
        state = collections.OrderedDict(backbone_names)
        for prefix, module in (("agg_block", self.agg_block), ("mask_predictor", self.mask_predictor),
                               ("head", self.head)):
            for key, value in module.state_dict().items():
                state[f"{prefix}.{key}"] = value.clone()
        return state
