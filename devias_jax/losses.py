"""The training loss of a run: the objective its model declares in devias_jax/methods.py.

The objectives and their terms live in devias_jax/objectives.py; the terms are importable from here too.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax

from devias_jax import matching  # noqa: F401  (re-exported with the terms)
from devias_jax.methods import model_of
from devias_jax.objectives import (  # noqa: F401  (re-exported)
    Metrics, attention_guidance, mask_bce, slot_cosine, soft_cross_entropy, teacher_kl)


def compute_loss(config: Any, outputs: Mapping[str, jax.Array],
                 targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    """(scalar loss, metrics of scalars) for the full run config (looked up by config.model.name)."""
    return model_of(config.model).loss(config, outputs, targets)
