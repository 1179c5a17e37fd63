"""PyTorch / HuggingFace state dicts -> Flax parameter paths and layouts.

Key maps: original VideoMAE (pre-training with `encoder.` prefix and decoder keys; fine-tuned with
`fc_norm`) and HuggingFace VideoMAE. Flax modules are named like their PyTorch counterparts, so the map
is one generic rule (`default_torch_key`) plus per-format key renames; `torch_to_flax_array` changes
tensor layouts and `map_to_params` fills a Flax parameter template, reporting what it used.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, Callable, Iterable, Mapping

import ml_dtypes
import numpy as np

from devias_jax.torch_reader import CheckpointError

# ----------------------------------------------------------------------------------------------------
# State dicts: normalise key names
# ----------------------------------------------------------------------------------------------------


def is_huggingface(state_dict: Mapping[str, Any]) -> bool:
    return any(k.startswith(("videomae.", "embeddings.patch_embeddings")) or ".attention.attention." in k
               for k in state_dict)


_HF_RENAMES = [
    (r"^videomae\.", ""),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.(q_bias|v_bias)$", r"blocks.\1.attn.\2"),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]
_HF_QKV = re.compile(r"^(?:videomae\.)?encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$")


def huggingface_to_videomae(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames HuggingFace VideoMAE keys to the original VideoMAE names; fuses q/k/v into qkv."""
    out: dict[str, np.ndarray] = {}
    qkv: dict[str, dict[str, np.ndarray]] = collections.defaultdict(dict)
    for key, value in state_dict.items():
        match = _HF_QKV.match(key)
        if match:
            layer, which, kind = match.groups()
            qkv[layer][f"{which}.{kind}"] = value
            continue
        new = key
        for pattern, replacement in _HF_RENAMES:
            new = re.sub(pattern, replacement, new)
        out[new] = value
    for layer, parts in qkv.items():
        missing = [p for p in ("query.weight", "key.weight", "value.weight") if p not in parts]
        if missing:
            raise CheckpointError(f"HuggingFace layer {layer}: missing attention weights {missing}")
        out[f"blocks.{layer}.attn.qkv.weight"] = np.concatenate(
            [parts["query.weight"], parts["key.weight"], parts["value.weight"]], axis=0)
        if "key.bias" in parts and np.any(parts["key.bias"] != 0):
            raise CheckpointError(f"HuggingFace layer {layer}: non-zero key bias; the VideoMAE ViT fixes it at 0")
        for which, name in (("query", "q_bias"), ("value", "v_bias")):
            if f"{which}.bias" in parts:
                out[f"blocks.{layer}.attn.{name}"] = parts[f"{which}.bias"]
    return out


# Keys of VideoMAE pre-training files that no encoder-only model uses.
_DROPPED = re.compile(r"^(decoder\.|encoder_to_decoder\.|mask_token$|decoder_pos_embed$|pos_embed$)")


def normalize_state_dict(state_dict: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Original VideoMAE names at top level: strips DDP/pre-training prefixes, drops decoder keys,
    renames HuggingFace keys. Returns (weights, dropped key names)."""
    weights = {re.sub(r"^module\.", "", k): v for k, v in state_dict.items()}
    if is_huggingface(weights):
        weights = huggingface_to_videomae(weights)
    dropped = sorted(k for k in weights if _DROPPED.match(k))
    weights = {re.sub(r"^(encoder|backbone)\.", "", k): v for k, v in weights.items() if not _DROPPED.match(k)}
    return weights, dropped


# ----------------------------------------------------------------------------------------------------
# Mapping onto the Flax parameter tree
# ----------------------------------------------------------------------------------------------------


def default_torch_key(flax_path: str) -> str:
    """'blocks/0/attn/qkv/kernel' -> 'blocks.0.attn.qkv.weight' (modules are named as in PyTorch)."""
    parts = flax_path.split("/")
    if parts[-1] in ("kernel", "scale"):
        parts[-1] = "weight"
    return ".".join(parts)


def torch_to_flax_array(flax_path: str, value: np.ndarray) -> np.ndarray:
    """Layout change for one tensor: Linear (out,in)->(in,out); Conv3d (D,C,t,y,x)->(t,y,x,C,D)."""
    value = np.asarray(value)
    if value.dtype == ml_dtypes.bfloat16 or np.issubdtype(value.dtype, np.floating):
        value = value.astype(np.float32)  # fp16 / bf16 / fp64 checkpoints -> float32 params
    if flax_path.endswith("kernel"):
        if value.ndim == 2:
            return value.T
        if value.ndim >= 3:
            return np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))
    return value


@dataclasses.dataclass
class ConversionReport:
    loaded: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)  # flax params not in the checkpoint
    skipped: list[str] = dataclasses.field(default_factory=list)  # flax params excluded by a rule
    unused: list[str] = dataclasses.field(default_factory=list)  # checkpoint keys nothing used
    dropped: list[str] = dataclasses.field(default_factory=list)  # checkpoint keys known to be irrelevant

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for name in ("missing", "skipped", "unused", "dropped"):
            items = getattr(self, name)
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                lines.append(f"{name} ({len(items)}): {shown}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, list[str]]:
        return dataclasses.asdict(self)


def map_to_params(template: Mapping[str, tuple[int, ...]], weights: Mapping[str, np.ndarray], *,
                  torch_key: Callable[[str], str | None] = default_torch_key,
                  transform: Callable[[str, np.ndarray], np.ndarray] = torch_to_flax_array,
                  skip: str | None = None, strict: bool = False,
                  dropped: Iterable[str] = ()) -> tuple[dict[str, np.ndarray], ConversionReport]:
    """Fills {flax_path: shape} from PyTorch-named weights.

    `torch_key` maps a flax path to its PyTorch key (None: not in checkpoints), `transform` changes the
    layout (identity for already-converted params); `skip` is a regex of
    flax paths to leave at their initial values (e.g. a new head). Every shape mismatch is reported at
    once with both shapes; with `strict`, missing parameters are an error too.
    """
    report = ConversionReport(dropped=sorted(dropped))
    params: dict[str, np.ndarray] = {}
    used: set[str] = set()
    mismatches = []
    skip_re = re.compile(skip) if skip else None
    for path, shape in template.items():
        if skip_re is not None and skip_re.search(path):
            report.skipped.append(path)
            continue
        key = torch_key(path)
        if key is None or key not in weights:
            report.missing.append(path)
            continue
        used.add(key)
        value = transform(path, weights[key])
        if tuple(value.shape) != tuple(shape):
            mismatches.append(f"  '{key}': checkpoint {tuple(np.shape(weights[key]))} "
                              f"(as Flax {tuple(value.shape)}) vs model '{path}' {tuple(shape)}")
            continue
        params[path] = value
        report.loaded.append(path)
    report.unused = sorted(set(weights) - used)
    if mismatches:
        raise CheckpointError("shape mismatch between checkpoint and model:\n" + "\n".join(mismatches))
    if strict and report.missing:
        raise CheckpointError("checkpoint lacks model parameters: " + ", ".join(report.missing))
    return params, report

