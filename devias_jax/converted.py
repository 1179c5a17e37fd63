"""Converted checkpoints on disk: Flax parameters saved with orbax plus a JSON description."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
import orbax.checkpoint as ocp

from devias_jax.torch_reader import CheckpointError

CONVERSION_FILE = "conversion.json"


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a/b/c': x} -> {'a': {'b': {'c': x}}} (string keys throughout; orbax-friendly)."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def save_converted(directory: str, params: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> str:
    """Writes params (orbax, under `params/`) and a JSON description; returns the directory."""
    directory = os.path.abspath(directory)
    target = os.path.join(directory, "params")
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists; choose a new output directory")
    os.makedirs(directory, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(target, unflatten({k: np.asarray(v) for k, v in params.items()}))
        checkpointer.wait_until_finished()
    with open(os.path.join(directory, CONVERSION_FILE), "w") as handle:
        json.dump(dict(metadata), handle, indent=2, default=str)
    return directory


def is_converted_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "params"))


def load_converted(directory: str) -> dict[str, np.ndarray]:
    """Flat {flax_path: array} from a directory written by `save_converted`."""
    target = os.path.join(os.path.abspath(directory), "params")
    if not os.path.isdir(target):
        raise CheckpointError(f"{directory}: not a converted checkpoint (no params/ inside)")
    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(target)
    return {k: np.asarray(v) for k, v in flatten(tree).items()}
