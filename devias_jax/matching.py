"""K -> 2 slot matching (REFERENCE §4): which slot is the action slot and which the scene slot, per sample.

P = softmax over all C_a + C_s outputs of every slot (stop-gradient); cost[k, 0] = -P[k, y_action] and
cost[k, 1] = -P[k, C_a + y_scene] (with soft action targets y: cost[k, 0] = -sum_c y_c P[k, c]).
Methods, all batched and jit/vmap-able:

- "exact":  the optimal assignment on device. A K x 2 assignment is the ordered pair (i != j) minimising
            cost[i, 0] + cost[j, 1], so enumerating the K(K-1) pairs solves it exactly.
- "scipy":  scipy.optimize.linear_sum_assignment through jax.pure_callback (the reference; host round-trip).
- "greedy": take the cheapest (slot, role) entry of the cost matrix, then the cheapest other slot for
            the remaining role.
- "hard":   slot 0 is the action slot, slot 1 the scene slot (the paper's "hard assign" ablation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("exact", "scipy", "greedy", "hard")


def matching_cost(logits: jax.Array, action: jax.Array, scene: jax.Array, num_actions: int) -> jax.Array:
    """logits (B, K, C_a + C_s); action (B,) int or (B, C_a) soft targets; scene (B,) int -> cost (B, K, 2)."""
    probs = jax.nn.softmax(jax.lax.stop_gradient(logits).astype(jnp.float32), axis=-1)  # (B, K, C)
    if action.ndim == 2:  # soft targets (mixup / label smoothing): expected probability of the target
        action_cost = -jnp.einsum("bkc,bc->bk", probs[..., :num_actions], action.astype(jnp.float32))
    else:
        action_cost = -jnp.take_along_axis(probs, action.astype(jnp.int32)[:, None, None], axis=-1)[..., 0]
    scene_index = (scene.astype(jnp.int32) + num_actions)[:, None, None]
    scene_cost = -jnp.take_along_axis(probs, scene_index, axis=-1)[..., 0]
    return jnp.stack([action_cost, scene_cost], axis=-1)  # (B, K, 2)


def _assign_exact(cost: jax.Array) -> jax.Array:
    num_slots = cost.shape[1]
    total = cost[:, :, None, 0] + cost[:, None, :, 1]  # (B, K_action, K_scene)
    total = jnp.where(jnp.eye(num_slots, dtype=bool)[None], jnp.inf, total)  # one slot cannot take both roles
    best = jnp.argmin(total.reshape(total.shape[0], -1), axis=-1)  # first minimum in (i, j) order
    return jnp.stack([best // num_slots, best % num_slots], axis=-1)


def _scipy_host(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment  # on use: only the scipy reference matcher needs it

    cost = np.asarray(cost)
    flat = cost.reshape((-1,) + cost.shape[-2:])  # any leading (batch, vmap) dims
    result = np.empty((flat.shape[0], 2), np.int32)
    for index, matrix in enumerate(flat):
        rows, cols = linear_sum_assignment(matrix)  # K x 2: two rows assigned, one per column
        result[index, cols] = rows
    return result.reshape(cost.shape[:-2] + (2,))


def _assign_scipy(cost: jax.Array) -> jax.Array:
    shape = jax.ShapeDtypeStruct(cost.shape[:-2] + (2,), jnp.int32)
    # expand_dims: under vmap the host function receives the mapped axis as an extra leading dim and
    # handles it in one call (it loops over every leading index).
    return jax.pure_callback(_scipy_host, shape, cost, vmap_method="expand_dims")


def _assign_greedy(cost: jax.Array) -> jax.Array:
    batch, num_slots, _ = cost.shape
    first = jnp.argmin(cost.reshape(batch, -1), axis=-1)  # cheapest (slot, role) entry
    first_slot, first_role = first // 2, first % 2
    other_cost = jnp.take_along_axis(cost, (1 - first_role)[:, None, None], axis=-1)[..., 0]  # (B, K)
    other_cost = jnp.where(jnp.arange(num_slots)[None] == first_slot[:, None], jnp.inf, other_cost)
    second_slot = jnp.argmin(other_cost, axis=-1)
    action_slot = jnp.where(first_role == 0, first_slot, second_slot)
    scene_slot = jnp.where(first_role == 0, second_slot, first_slot)
    return jnp.stack([action_slot, scene_slot], axis=-1)


def assign(cost: jax.Array, method: str = "exact") -> jax.Array:
    """cost (B, K, 2) -> (B, 2) int32 [action_slot, scene_slot], minimising cost[a, 0] + cost[s, 1], a != s."""
    if method not in METHODS:
        raise ValueError(f"config.loss.matching={method!r}; expected one of {METHODS}")
    if cost.ndim != 3 or cost.shape[-1] != 2:
        raise ValueError(f"matching cost must have shape (B, K, 2); got {cost.shape}")
    if cost.shape[1] < 2:
        raise ValueError(f"matching needs at least 2 slots; got K={cost.shape[1]}")
    cost = jax.lax.stop_gradient(cost).astype(jnp.float32)
    if method == "exact":
        assignment = _assign_exact(cost)
    elif method == "scipy":
        assignment = _assign_scipy(cost)
    elif method == "greedy":
        assignment = _assign_greedy(cost)
    else:
        assignment = jnp.broadcast_to(jnp.array([0, 1]), (cost.shape[0], 2))
    return assignment.astype(jnp.int32)


def match(logits: jax.Array, action: jax.Array, scene: jax.Array, num_actions: int,
          method: str = "exact") -> jax.Array:
    """Training-time slot roles. logits (B, K, C_a + C_s), action (B,) int32 (or (B, C_a) soft targets),
    scene (B,) int32 -> (B, 2) int32 [action_slot, scene_slot]. Gradients never flow through it."""
    return assign(matching_cost(logits, action, scene, num_actions), method)
