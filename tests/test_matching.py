"""K -> 2 slot matching: the on-device exact solver equals scipy's Hungarian; greedy and hard semantics."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from devias_jax import matching


def brute_force(cost: np.ndarray) -> tuple[int, int]:
    """The ordered pair (action slot, scene slot), distinct, of least total cost."""
    pairs = itertools.permutations(range(cost.shape[0]), 2)
    return min(pairs, key=lambda pair: cost[pair[0], 0] + cost[pair[1], 1])


@pytest.mark.parametrize("num_slots", range(2, 9))
def test_exact_equals_scipy_under_jit(num_slots):
    cost = jnp.asarray(np.random.default_rng(num_slots).standard_normal((16, num_slots, 2)), jnp.float32)
    exact = jax.jit(lambda c: matching.assign(c, "exact"))(cost)
    scipy = jax.jit(lambda c: matching.assign(c, "scipy"))(cost)
    assert exact.dtype == jnp.int32 and exact.shape == (16, 2)
    np.testing.assert_array_equal(np.asarray(exact), np.asarray(scipy))
    np.testing.assert_array_equal(np.asarray(exact), [brute_force(c) for c in np.asarray(cost)])


@pytest.mark.parametrize("method", ["exact", "scipy"])
def test_match_under_vmap_and_jit(method):
    """An extra vmapped axis (e.g. per-device groups) goes through both solvers unchanged."""
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.standard_normal((3, 4, 5, 10)), jnp.float32)  # (G, B, K, C_a + C_s)
    action = jnp.asarray(rng.integers(0, 6, (3, 4)), jnp.int32)
    scene = jnp.asarray(rng.integers(0, 4, (3, 4)), jnp.int32)
    batched = jax.jit(jax.vmap(lambda l, a, s: matching.match(l, a, s, 6, method)))(logits, action, scene)
    assert batched.shape == (3, 4, 2)
    for group in range(3):
        probs = np.asarray(jax.nn.softmax(logits[group], -1))
        for b in range(4):
            cost = np.stack([-probs[b, :, int(action[group, b])], -probs[b, :, 6 + int(scene[group, b])]], -1)
            assert tuple(np.asarray(batched[group, b])) == brute_force(cost)


def test_cost_uses_joint_softmax_and_soft_targets():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.standard_normal((2, 3, 7)), jnp.float32)
    cost = matching.matching_cost(logits, jnp.array([1, 4]), jnp.array([0, 1]), num_actions=5)
    probs = np.asarray(jax.nn.softmax(logits, -1))
    np.testing.assert_allclose(np.asarray(cost[1, :, 0]), -probs[1, :, 4], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cost[1, :, 1]), -probs[1, :, 5 + 1], rtol=1e-6)
    one_hot = jax.nn.one_hot(jnp.array([1, 4]), 5)
    np.testing.assert_allclose(matching.matching_cost(logits, one_hot, jnp.array([0, 1]), 5), cost, rtol=1e-6)


def test_greedy_takes_the_cheapest_entry_first():
    # Optimal: slot 1 action (-0.8) + slot 0 scene (-0.7) = -1.5. Greedy: cheapest entry is slot 0 as
    # action (-0.9); the scene role then goes to the cheapest other slot, slot 2 (-0.3): total -1.2.
    cost = jnp.array([[[-0.9, -0.7], [-0.8, -0.1], [-0.0, -0.3]]], jnp.float32)
    assert matching.assign(cost, "greedy").tolist() == [[0, 2]]
    assert matching.assign(cost, "exact").tolist() == [[1, 0]]
    # When the cheapest entry is a scene entry, that slot becomes the scene slot.
    cost = jnp.array([[[-0.2, -0.95], [-0.6, -0.1], [-0.5, -0.4]]], jnp.float32)
    assert matching.assign(cost, "greedy").tolist() == [[1, 0]]


def test_hard_assignment_is_slot0_action_slot1_scene():
    cost = jnp.asarray(np.random.default_rng(2).standard_normal((5, 4, 2)), jnp.float32)
    assert matching.assign(cost, "hard").tolist() == [[0, 1]] * 5


def test_roles_never_share_a_slot():
    rng = np.random.default_rng(3)
    for method in ("exact", "scipy", "greedy"):
        # Identical costs in both columns make "one slot for both roles" the naive choice.
        column = rng.standard_normal((32, 4, 1))
        assignment = np.asarray(matching.assign(jnp.asarray(np.concatenate([column, column], -1), jnp.float32), method))
        assert np.all(assignment[:, 0] != assignment[:, 1]), method


def test_bad_method_and_too_few_slots_are_named():
    with pytest.raises(ValueError, match="config.loss.matching='optimal'"):
        matching.assign(jnp.zeros((1, 2, 2)), "optimal")
    with pytest.raises(ValueError, match="K=1"):
        matching.assign(jnp.zeros((1, 1, 2)), "exact")
