"""One per-parameter rule mechanism: regexes on '/'-joined parameter paths, first match wins.

Used for weight-decay masks, layer ids / lr scales and shardings, so every per-parameter decision in
the project reads the same way and every parameter is covered (an unmatched path is an error).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax

Rule = tuple[str, Any]  # (regex searched in the path, value or callable(path, match, leaf) -> value)


def key_to_str(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_str(keypath: Sequence[Any]) -> str:
    """jax key path -> 'blocks/0/attn/qkv/kernel'."""
    return "/".join(key_to_str(k) for k in keypath)


def tree_paths(tree: Any) -> Any:
    """A tree of the same structure holding each leaf's '/'-joined path."""
    return jax.tree_util.tree_map_with_path(lambda kp, _: path_str(kp), tree)


def apply_rules(tree: Any, rules: Sequence[Rule], what: str) -> Any:
    """Tree of values: for each leaf, the first rule whose regex matches its path decides.

    A rule's value may be a callable `(path, match, leaf) -> value` (e.g. a layer id read from the
    path). Raises ValueError naming the first path no rule covers.
    """
    compiled = [(re.compile(pattern), value) for pattern, value in rules]

    def decide(keypath, leaf):
        path = path_str(keypath)
        for pattern, value in compiled:
            match = pattern.search(path)
            if match:
                return value(path, match, leaf) if callable(value) else value
        raise ValueError(f"no {what} rule covers parameter '{path}'; rules: {[p for p, _ in rules]}")

    return jax.tree_util.tree_map_with_path(decide, tree)


def flat_values(tree: Any) -> dict[str, Any]:
    """{path: leaf} for reporting."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {path_str(kp): leaf for kp, leaf in leaves}

