"""Clip normalisation shared by the trainer, evaluation and the inference API (REFERENCE §2)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def to_unit(clips_uint8: jnp.ndarray) -> jnp.ndarray:
    """uint8 [0, 255] -> float32 [0, 1] (the input FAME and scene mixing work on)."""
    return clips_uint8.astype(jnp.float32) / 255.0


def normalize(clips_unit: jnp.ndarray) -> jnp.ndarray:
    """[0, 1] RGB, channels last -> ImageNet-normalised float32 (what the models take)."""
    return (clips_unit - IMAGENET_MEAN) / IMAGENET_STD


def normalize_uint8(clips_uint8) -> jnp.ndarray:
    return normalize(to_unit(jnp.asarray(clips_uint8)))
