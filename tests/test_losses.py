"""DEVIAS objective and baseline losses against numpy transcriptions and hand-computed values, in the
default and the official-compatible modes; gradients, mask-loss routing and the cosine term."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax

from configs import defaults
from devias_jax import matching, methods, objectives


def compute_loss(config, outputs, targets):
    """The run's objective as the trainer resolves it: the registry's entry for config.model.name."""
    return methods.model_of(config.model).loss(config, outputs, targets)

C_A, C_S = 3, 2


def loss_config(**overrides) -> ml_collections.ConfigDict:
    config = defaults.loss_config()
    config.update(overrides)
    return config


def run_config(name: str, unified: bool = False, **loss_overrides) -> ml_collections.ConfigDict:
    model = defaults.model_config("custom")
    model.update(name=name, num_actions=C_A, num_scenes=C_S, unified_head=unified)
    return ml_collections.ConfigDict({"method": name, "model": model, "loss": loss_config(**loss_overrides)})


def example(batch: int = 2, num_slots: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    outputs = {
        "logits": rng.standard_normal((batch, num_slots, C_A + C_S)) * 2,
        "slots": rng.standard_normal((batch, num_slots, 6)),
        "attention": softmax(rng.standard_normal((batch, num_slots, 8)), axis=1),
        "action_mask_logits": rng.standard_normal((batch, num_slots, 4)) * 2,
    }
    targets = {
        "action": rng.integers(0, C_A, batch),
        "scene": rng.integers(0, C_S, batch),
        "scene_teacher_logits": rng.standard_normal((batch, C_S)) * 3,
        "clip_mask_target": rng.uniform(size=(batch, 4)),
        "tubelet_mask_target": rng.uniform(size=(batch, 8)),
    }
    as_jax = lambda d: {k: jnp.asarray(v, jnp.int32 if v.dtype.kind == "i" else jnp.float32) for k, v in d.items()}  # noqa: E731
    return outputs, targets, as_jax(outputs), as_jax(targets)


def numpy_devias_loss(outputs, targets, scene_target: str, official: bool) -> dict[str, float]:
    """REFERENCE §4-§5 written out in float64 numpy, one sample at a time."""
    terms = {name: [] for name in ("action", "scene", "amd", "ag", "cos")}
    for b in range(len(targets["action"])):
        logits = outputs["logits"][b]
        probs = softmax(logits, -1)
        y_a, y_s = targets["action"][b], targets["scene"][b]
        if scene_target == "teacher":
            y_s = np.argmax(targets["scene_teacher_logits"][b])  # matching uses the teacher's argmax
        pairs = itertools.permutations(range(len(logits)), 2)
        a, s = min(pairs, key=lambda p: -probs[p[0], y_a] - probs[p[1], C_A + y_s])
        terms["action"].append(-log_softmax(logits[a])[y_a])
        if scene_target == "label":
            terms["scene"].append(-log_softmax(logits[s])[C_A + y_s])
        elif official:
            teacher = np.concatenate([np.full(C_A, targets["scene_teacher_logits"].min() - 1),
                                      targets["scene_teacher_logits"][b]])
            p = softmax(teacher)
            terms["scene"].append(4000 * np.sum(p * (np.log(p) - log_softmax(logits[s]))) / (C_A + C_S))
        else:
            p = softmax(targets["scene_teacher_logits"][b])
            terms["scene"].append(np.sum(p * (np.log(p) - log_softmax(logits[s])[C_A:])))
        m = targets["clip_mask_target"][b]
        if official:
            x = expit(outputs["action_mask_logits"][b, a])
            terms["amd"].append(np.mean(np.maximum(x, 0) - x * m + np.log1p(np.exp(-np.abs(x)))))
        else:
            p = expit(outputs["action_mask_logits"][b, a])
            terms["amd"].append(-np.mean(m * np.log(p) + (1 - m) * np.log(1 - p)))
        terms["ag"].append(np.mean((outputs["attention"][b, a] - targets["tubelet_mask_target"][b]) ** 2))
        unit = outputs["slots"][b] / np.linalg.norm(outputs["slots"][b], axis=-1, keepdims=True)
        cosine = unit @ unit.T
        k = len(unit)
        terms["cos"].append((cosine.sum() - np.trace(cosine)) / (k * (k - 1)))
    return {name: float(np.mean(values)) for name, values in terms.items()}


@pytest.mark.parametrize("official", [False, True])
@pytest.mark.parametrize("scene_target", ["label", "teacher"])
def test_devias_loss_matches_numpy(scene_target, official):
    outputs, targets, jax_outputs, jax_targets = example()
    config = run_config("devias", scene_target=scene_target, official_compat=official, alpha=0.5, beta=2.0, gamma=3.0)
    loss, metrics = jax.jit(lambda o, t: compute_loss(config, o, t))(jax_outputs, jax_targets)
    expected = numpy_devias_loss(outputs, targets, scene_target, official)
    for name in ("action", "scene", "amd", "ag", "cos"):
        np.testing.assert_allclose(float(metrics[f"loss_{name}"]), expected[name], rtol=2e-5, atol=1e-6, err_msg=name)
    total = (expected["action"] + expected["scene"] + 0.5 * expected["amd"] + 2.0 * expected["ag"]
             + 3.0 * expected["cos"])
    np.testing.assert_allclose(float(loss), total, rtol=2e-5)
    assert set(metrics) >= {"loss", "loss_de", "loss_action", "loss_scene", "loss_amd", "loss_ag", "loss_cos",
                            "action_acc", "scene_acc"}


def test_hand_computed_values():
    half = jnp.zeros((1, 4))
    # BCE of p = sigmoid(0) = 0.5 is ln 2 whatever the target.
    np.testing.assert_allclose(objectives.mask_bce(half, jnp.array([[0.0, 1.0, 0.3, 1.0]])), [np.log(2)], rtol=1e-6)
    # Official double sigmoid at z = 0: BCE-with-logits(0.5, m) = log(1 + e^0.5) - 0.5 m.
    np.testing.assert_allclose(objectives.mask_bce(half, jnp.ones((1, 4)), official=True),
                               [np.log1p(np.exp(0.5)) - 0.5], rtol=1e-6)
    np.testing.assert_allclose(objectives.attention_guidance(jnp.array([[0.5, 0.0]]), jnp.array([[1.0, 1.0]])),
                               [(0.25 + 1.0) / 2], rtol=1e-6)
    orthogonal = jnp.array([[[1.0, 0.0], [0.0, 3.0]]])
    opposite = jnp.array([[[1.0, 1.0], [-2.0, -2.0]]])
    np.testing.assert_allclose(objectives.slot_cosine(orthogonal), [0.0], atol=1e-7)
    np.testing.assert_allclose(objectives.slot_cosine(opposite), [-1.0], atol=1e-6)
    np.testing.assert_allclose(objectives.slot_cosine(opposite, "abs"), [1.0], atol=1e-6)
    # Official teacher KL on identical distributions is 0; with a uniform 2-way teacher and C_a = 1 it is
    # sum p~ log(p~ / q) / 3 with p~ = softmax([min - 1, 0, 0]) = softmax([-1, 0, 0]).
    teacher = jnp.zeros((1, 2))
    padded = softmax(np.array([-1.0, 0.0, 0.0]))
    np.testing.assert_allclose(objectives.teacher_kl(jnp.log(jnp.asarray(padded))[None], teacher, 1, official=True),
                               [0.0], atol=1e-6)
    student = jnp.zeros((1, 3))
    np.testing.assert_allclose(objectives.teacher_kl(student, teacher, 1, official=True),
                               [np.sum(padded * np.log(padded * 3)) / 3], rtol=1e-5)
    # Default: the zero-padded teacher; uniform student over 3 outputs -> KL = ln 3 - ln 2 on the scene part.
    np.testing.assert_allclose(objectives.teacher_kl(student, teacher, 1), [np.log(3) - np.log(2)], rtol=1e-6)


def test_teacher_kl_weight_auto_and_override():
    _, _, outputs, targets = example()
    base = run_config("devias", scene_target="teacher", alpha=0, beta=0, gamma=0)
    weighted = run_config("devias", scene_target="teacher", alpha=0, beta=0, gamma=0, teacher_kl_weight=2.5)
    scene = float(compute_loss(base, outputs, targets)[1]["loss_scene"])
    np.testing.assert_allclose(float(compute_loss(weighted, outputs, targets)[1]["loss_scene"]), 2.5 * scene,
                               rtol=1e-6)
    official = run_config("devias", scene_target="teacher", official_compat=True)
    official_weighted = run_config("devias", scene_target="teacher", official_compat=True, teacher_kl_weight=40.0)
    np.testing.assert_allclose(float(compute_loss(official, outputs, targets)[1]["loss_scene"]),
                               100 * float(compute_loss(official_weighted, outputs, targets)[1]["loss_scene"]),
                               rtol=1e-5)


def test_only_the_matched_action_slot_gets_mask_losses():
    _, _, outputs, targets = example(batch=4, num_slots=4, seed=3)
    config = run_config("devias")

    def mask_terms(mask_logits, attention):
        o = dict(outputs, action_mask_logits=mask_logits, attention=attention)
        metrics = compute_loss(config, o, targets)[1]
        return metrics["loss_amd"] + metrics["loss_ag"]

    grad_mask, grad_attention = jax.grad(mask_terms, argnums=(0, 1))(outputs["action_mask_logits"],
                                                                       outputs["attention"])
    action_slot = np.asarray(matching.match(outputs["logits"], targets["action"], targets["scene"], C_A))[:, 0]
    for grad in (np.asarray(grad_mask), np.asarray(grad_attention)):
        touched = np.abs(grad).sum(-1) > 0  # (B, K)
        expected = np.zeros_like(touched)
        expected[np.arange(4), action_slot] = True
        np.testing.assert_array_equal(touched, expected)


def test_matching_gets_no_gradient_and_logits_do():
    _, _, outputs, targets = example()
    config = run_config("devias")
    grad = jax.grad(lambda logits: compute_loss(config, dict(outputs, logits=logits), targets)[0])(
        outputs["logits"])
    assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.abs(grad).sum()) > 0


def test_cos_loss_decreases_as_slots_move_apart():
    angles = np.linspace(0.0, np.pi, 9)
    slots = jnp.asarray(np.stack([[[1.0, 0.0, 0.0], [np.cos(t), np.sin(t), 0.0]] for t in angles]), jnp.float32)
    signed = np.asarray(objectives.slot_cosine(slots))
    np.testing.assert_allclose(signed, np.cos(angles), atol=1e-6)
    assert np.all(np.diff(signed) < 0)
    absolute = np.asarray(objectives.slot_cosine(slots, "abs"))
    assert np.argmin(absolute) == 4  # orthogonal slots are the |cos| optimum
    # Gradient descent on L_cos spreads three slots out.
    three = jnp.asarray(np.random.default_rng(0).standard_normal((1, 3, 4)) + 2.0, jnp.float32)
    start = float(objectives.slot_cosine(three)[0])
    step = jax.jit(jax.grad(lambda s: objectives.slot_cosine(s).sum()))
    for _ in range(60):
        three = three - 2.0 * step(three)
    assert start > 0.9 and float(objectives.slot_cosine(three)[0]) < -0.4  # -1/2 is the optimum for 3 slots


def test_soft_targets_label_smoothing_and_action_only():
    _, _, outputs, targets = example()
    config = run_config("devias")
    hard = compute_loss(config, outputs, targets)[0]
    soft_targets = dict(targets, action_soft=jax.nn.one_hot(targets["action"], C_A))
    np.testing.assert_allclose(float(compute_loss(config, outputs, soft_targets)[0]), float(hard), rtol=1e-6)
    logits = jnp.array([[2.0, 0.0, -1.0]])
    smoothed = run_config("action_vit", label_smoothing=0.3)
    loss = compute_loss(smoothed, {"action_logits": logits}, {"action": jnp.array([0])})[0]
    target = np.array([0.7, 0.0, 0.0]) + 0.1
    np.testing.assert_allclose(float(loss), -np.sum(target * log_softmax(np.asarray(logits[0]))), rtol=1e-6)


def test_baseline_objectives():
    rng = np.random.default_rng(5)
    action_logits, scene_logits = rng.standard_normal((2, C_A)), rng.standard_normal((2, C_S))
    teacher = rng.standard_normal((2, C_S))
    targets = {"action": jnp.array([1, 2]), "scene": jnp.array([0, 1]), "scene_teacher_logits": jnp.asarray(teacher)}
    outputs = {"action_logits": jnp.asarray(action_logits), "scene_logits": jnp.asarray(scene_logits)}
    ce_action = -np.mean(log_softmax(action_logits, -1)[[0, 1], [1, 2]])
    loss, metrics = compute_loss(run_config("two_token"), outputs, targets)
    np.testing.assert_allclose(float(metrics["loss_action"]), ce_action, rtol=1e-6)
    np.testing.assert_allclose(float(loss), ce_action - np.mean(log_softmax(scene_logits, -1)[[0, 1], [0, 1]]),
                               rtol=1e-6)
    p = softmax(teacher, -1)
    kl = np.mean(np.sum(p * (np.log(p) - log_softmax(scene_logits, -1)), -1))
    loss, _ = compute_loss(run_config("one_token", scene_target="teacher"), outputs, targets)
    np.testing.assert_allclose(float(loss), ce_action + kl, rtol=1e-6)
    loss, _ = compute_loss(run_config("scene_vit", scene_target="teacher"), outputs, targets)
    np.testing.assert_allclose(float(loss), kl, rtol=1e-6)
    for name, key in (("vit", "logits"), ("action_vit", "action_logits"), ("devias_downstream", "action_logits")):
        loss, metrics = compute_loss(run_config(name), {key: outputs["action_logits"]}, targets)
        np.testing.assert_allclose(float(loss), ce_action, rtol=1e-6)
        assert float(metrics["action_acc"]) == np.mean(np.argmax(action_logits, -1) == [1, 2])
    # Unified head: L_DE with fixed roles equals DEVIAS's L_DE under the hard assignment.
    _, _, devias_outputs, devias_targets = example(num_slots=2)
    unified = compute_loss(run_config("two_token", unified=True), {"logits": devias_outputs["logits"]},
                                  devias_targets)[1]
    hard = compute_loss(run_config("devias", matching="hard"), devias_outputs, devias_targets)[1]
    np.testing.assert_allclose(float(unified["loss_de"]), float(hard["loss_de"]), rtol=1e-6)


def test_missing_targets_and_bad_values_are_named():
    _, _, outputs, targets = example()
    no_masks = {k: v for k, v in targets.items() if k != "clip_mask_target"}
    with pytest.raises(KeyError, match="clip_mask_target"):
        compute_loss(run_config("devias"), outputs, no_masks)
    compute_loss(run_config("devias", alpha=0.0), outputs, no_masks)  # not needed when unused
    no_teacher = {k: v for k, v in targets.items() if k != "scene_teacher_logits"}
    with pytest.raises(KeyError, match="scene_teacher_logits"):
        compute_loss(run_config("devias", scene_target="teacher"), outputs, no_teacher)
    with pytest.raises(ValueError, match="config.loss.cos_mode='one_minus'"):
        compute_loss(run_config("devias", cos_mode="one_minus"), outputs, targets)
