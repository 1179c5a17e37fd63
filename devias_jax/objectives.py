"""Training objectives (REFERENCE §4-§5): L = L_DE + alpha L_AMD + beta L_AG + gamma L_cos for DEVIAS, and
the baselines' cross-entropies, one objective per kind of model. Every term is averaged over the batch.

Defaults follow the paper's intent; `config.loss.official_compat` reproduces the official code's numerics:

| term       | default                                                | official_compat                              |
|------------|--------------------------------------------------------|----------------------------------------------|
| L_AMD      | BCE on the mask probability sigmoid(z)                 | BCE-with-logits applied to sigmoid(z) (double sigmoid) |
| L_DE scene | KL(softmax(t) || softmax(z)), teacher zero-padded at   | teacher logits padded with min(batch) - 1;   |
| (teacher)  | the C_a action outputs; weight 1 (teacher_kl_weight)   | KL summed / (C_a + C_s) ('batchmean' on 1-D) x 4000 |
| L_cos      | mean off-diagonal cosine (signed; 'abs' optional)      | same (the official code minimises the signed cosine) |

The paper prints L_cos = (1/K) sum_i sum_{j != i} [1 - cos(S_i, S_j)], which would pull the slots together;
its stated aim (diversify the slots) and the official code minimise the cosine, as done here.

targets: `action` (B,) int32 and/or `action_soft` (B, C_a); `scene` (B,) int32 and/or
`scene_teacher_logits` (B, C_s); `clip_mask_target` (B, H/16 * W/16); `tubelet_mask_target` (B, N).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from devias_jax import matching

OFFICIAL_TEACHER_KL_WEIGHT = 4000.0
COS_MODES = ("signed", "abs")
SCENE_TARGETS = ("label", "teacher")

Metrics = dict[str, jax.Array]


# ----------------------------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------------------------


def _require(targets: Mapping[str, jax.Array], key: str, why: str) -> jax.Array:
    if key not in targets:
        raise KeyError(f"targets[{key!r}] is required {why}; got targets {sorted(targets)}")
    return targets[key]


def _one_hot(labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
    """(B,) int -> (B, num_classes) with label smoothing (1 - eps) one-hot + eps / num_classes."""
    hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return hot * (1.0 - smoothing) + smoothing / num_classes if smoothing else hot


def action_target_probs(targets: Mapping[str, jax.Array], num_actions: int, smoothing: float = 0.0) -> jax.Array:
    """(B, C_a) action target distribution: `action_soft` if given (mixup / cutmix / smoothing done by the
    trainer), else the smoothed one-hot of `action`."""
    if "action_soft" in targets:
        return targets["action_soft"].astype(jnp.float32)
    return _one_hot(_require(targets, "action", "for the action loss"), num_actions, smoothing)


def action_labels(targets: Mapping[str, jax.Array]) -> jax.Array:
    """(B,) hard action labels for matching and accuracy (argmax of the soft targets if no hard ones)."""
    if "action" in targets:
        return targets["action"].astype(jnp.int32)
    return jnp.argmax(_require(targets, "action_soft", "for the action loss"), axis=-1).astype(jnp.int32)


def scene_labels(targets: Mapping[str, jax.Array]) -> jax.Array:
    """(B,) scene labels: ground truth `scene`, else the teacher's argmax (pseudo label, as officially)."""
    if "scene" in targets:
        return targets["scene"].astype(jnp.int32)
    teacher = _require(targets, "scene_teacher_logits", "(or targets['scene']) for the scene loss")
    return jnp.argmax(teacher, axis=-1).astype(jnp.int32)


def _kl_weight(loss_config: Any, official_layout: bool) -> float:
    weight = float(loss_config.teacher_kl_weight)
    if weight >= 0:
        return weight
    return OFFICIAL_TEACHER_KL_WEIGHT if (official_layout and loss_config.official_compat) else 1.0


# ----------------------------------------------------------------------------------------------------
# Terms (per sample, (B,))
# ----------------------------------------------------------------------------------------------------


def soft_cross_entropy(logits: jax.Array, target_probs: jax.Array) -> jax.Array:
    """-sum_c t_c log softmax(z)_c per sample: logits (B, C), target_probs (B, C) -> (B,)."""
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), axis=-1)


def teacher_kl(student_logits: jax.Array, teacher_logits: jax.Array, num_actions: int,
               official: bool = False) -> jax.Array:
    """KL(softmax(t~) || softmax(z)) per sample, unweighted. student (B, C_a + C_s), teacher (B, C_s) -> (B,).

    Default: the teacher distribution is zero on the C_a action outputs (the paper zero-pads the scene
    target). official: t~ = teacher logits padded at the action positions with (batch minimum - 1), and
    the sum is divided by C_a + C_s (PyTorch 'batchmean' applied to a 1-D tensor).
    """
    student_log_probs = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)  # (B, C)
    teacher_logits = teacher_logits.astype(jnp.float32)
    if official:
        pad = jnp.full((teacher_logits.shape[0], num_actions), teacher_logits.min() - 1.0)
        teacher_log_probs = jax.nn.log_softmax(jnp.concatenate([pad, teacher_logits], axis=-1), axis=-1)
        kl = jnp.sum(jnp.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
        return kl / student_logits.shape[-1]
    teacher_log_probs = jax.nn.log_softmax(teacher_logits, axis=-1)  # (B, C_s)
    return jnp.sum(jnp.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs[:, num_actions:]), axis=-1)


def separate_head_teacher_kl(scene_logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
    """KL(softmax(t) || softmax(z)) per sample for a C_s-way scene head: (B, C_s) x2 -> (B,)."""
    teacher_log_probs = jax.nn.log_softmax(teacher_logits.astype(jnp.float32), axis=-1)
    student_log_probs = jax.nn.log_softmax(scene_logits.astype(jnp.float32), axis=-1)
    return jnp.sum(jnp.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)


def mask_bce(mask_logits: jax.Array, mask_target: jax.Array, official: bool = False) -> jax.Array:
    """L_AMD per sample: mean over the P patches of BCE(sigmoid(z), m). (B, P) x2 -> (B,).

    official: the official code feeds the already-sigmoided output to BCE-with-logits (double sigmoid).
    """
    mask_logits = mask_logits.astype(jnp.float32)
    mask_target = mask_target.astype(jnp.float32)
    if official:
        probs = jax.nn.sigmoid(mask_logits)
        per_patch = jax.nn.softplus(probs) - probs * mask_target  # BCE-with-logits on probabilities
    else:
        per_patch = -(mask_target * jax.nn.log_sigmoid(mask_logits)
                      + (1.0 - mask_target) * jax.nn.log_sigmoid(-mask_logits))
    return per_patch.mean(axis=-1)


def attention_guidance(attention: jax.Array, tubelet_target: jax.Array) -> jax.Array:
    """L_AG per sample: mean squared error over the N tokens. (B, N) x2 -> (B,). No stop-gradient."""
    return jnp.mean(jnp.square(attention.astype(jnp.float32) - tubelet_target.astype(jnp.float32)), axis=-1)


def slot_cosine(slots: jax.Array, mode: str = "signed") -> jax.Array:
    """L_cos per sample: mean over ordered pairs i != j of cos(S_i, S_j) (|cos| with mode='abs'). (B, K, D) -> (B,)."""
    if mode not in COS_MODES:
        raise ValueError(f"config.loss.cos_mode={mode!r}; expected one of {COS_MODES}")
    slots = slots.astype(jnp.float32)
    norms = jnp.sqrt(jnp.sum(jnp.square(slots), axis=-1, keepdims=True))
    unit = slots / jnp.maximum(norms, 1e-12)  # as torch.nn.functional.normalize
    cosine = jnp.einsum("bkd,bjd->bkj", unit, unit)  # (B, K, K)
    num_slots = slots.shape[1]
    off_diagonal = ~jnp.eye(num_slots, dtype=bool)[None]
    values = jnp.abs(cosine) if mode == "abs" else cosine
    return jnp.sum(jnp.where(off_diagonal, values, 0.0), axis=(1, 2)) / (num_slots * (num_slots - 1))


# ----------------------------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------------------------


def _take_slot(values: jax.Array, slot: jax.Array) -> jax.Array:
    """values (B, K, ...), slot (B,) -> values[b, slot[b]] (B, ...)."""
    return jnp.take_along_axis(values, slot.reshape((-1,) + (1,) * (values.ndim - 1)), axis=1)[:, 0]


def _accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


def disentangling_loss(loss_config: Any, action_slot_logits: jax.Array, scene_slot_logits: jax.Array,
                       targets: Mapping[str, jax.Array], num_actions: int) -> tuple[jax.Array, jax.Array]:
    """L_DE on the unified head: (action term, scene term), batch means.

    action_slot_logits / scene_slot_logits (B, C_a + C_s): the full unified outputs of the action / scene slot.
    Action: cross-entropy against the action target zero-padded at the scene outputs. Scene: cross-entropy
    against C_a + y_scene ('label'), or the teacher KL ('teacher').
    """
    num_outputs = action_slot_logits.shape[-1]
    num_scenes = num_outputs - num_actions
    smoothing = float(loss_config.label_smoothing)
    action_probs = action_target_probs(targets, num_actions, smoothing)  # (B, C_a)
    action_probs = jnp.pad(action_probs, ((0, 0), (0, num_scenes)))  # (B, C)
    action_term = soft_cross_entropy(action_slot_logits, action_probs).mean()
    if loss_config.scene_target == "teacher":
        teacher = _require(targets, "scene_teacher_logits", "with config.loss.scene_target='teacher'")
        kl = teacher_kl(scene_slot_logits, teacher, num_actions, official=bool(loss_config.official_compat))
        scene_term = _kl_weight(loss_config, official_layout=True) * kl.mean()
    elif loss_config.scene_target == "label":
        scene_probs = jnp.pad(_one_hot(scene_labels(targets), num_scenes, smoothing), ((0, 0), (num_actions, 0)))
        scene_term = soft_cross_entropy(scene_slot_logits, scene_probs).mean()
    else:
        raise ValueError(f"config.loss.scene_target={loss_config.scene_target!r}; expected one of {SCENE_TARGETS}")
    return action_term, scene_term


def devias_loss(loss_config: Any, outputs: Mapping[str, jax.Array], targets: Mapping[str, jax.Array],
                num_actions: int, assignment: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
    """L = L_DE + alpha L_AMD + beta L_AG + gamma L_cos with the slot roles from `matching.match` (on
    stop-gradient probabilities) unless an assignment (B, 2) is given. Only the matched action slot gets
    the mask losses."""
    logits = outputs["logits"].astype(jnp.float32)  # (B, K, C)
    if assignment is None:
        match_action = targets["action_soft"] if "action_soft" in targets else action_labels(targets)
        assignment = matching.match(logits, match_action, scene_labels(targets), num_actions,
                                    loss_config.matching)
    assignment = jax.lax.stop_gradient(assignment)
    action_slot, scene_slot = assignment[:, 0], assignment[:, 1]  # (B,)
    action_slot_logits, scene_slot_logits = _take_slot(logits, action_slot), _take_slot(logits, scene_slot)
    loss_action, loss_scene = disentangling_loss(loss_config, action_slot_logits, scene_slot_logits, targets,
                                                 num_actions)
    official = bool(loss_config.official_compat)
    zero = jnp.zeros((), jnp.float32)
    loss_amd = loss_ag = zero
    if float(loss_config.alpha) > 0 or "clip_mask_target" in targets:
        clip_target = _require(targets, "clip_mask_target", "for L_AMD (config.loss.alpha > 0)")
        if "action_mask_logits" in outputs:
            mask_logits = _take_slot(outputs["action_mask_logits"], action_slot)  # (B, P)
        else:  # probabilities only: back to logits, clipped like torch's BCE log clamp
            probs = jnp.clip(_take_slot(outputs["action_mask"], action_slot).astype(jnp.float32), 1e-7, 1 - 1e-7)
            mask_logits = jnp.log(probs) - jnp.log1p(-probs)
        loss_amd = mask_bce(mask_logits, clip_target, official).mean()
    if float(loss_config.beta) > 0 or "tubelet_mask_target" in targets:
        tubelet_target = _require(targets, "tubelet_mask_target", "for L_AG (config.loss.beta > 0)")
        loss_ag = attention_guidance(_take_slot(outputs["attention"], action_slot), tubelet_target).mean()
    loss_cos = slot_cosine(outputs["slots"], loss_config.cos_mode).mean()
    loss_de = loss_action + loss_scene
    loss = (loss_de + float(loss_config.alpha) * loss_amd + float(loss_config.beta) * loss_ag
            + float(loss_config.gamma) * loss_cos)
    metrics = {
        "loss": loss, "loss_de": loss_de, "loss_action": loss_action, "loss_scene": loss_scene,
        "loss_amd": loss_amd, "loss_ag": loss_ag, "loss_cos": loss_cos,
        "action_acc": _accuracy(action_slot_logits[:, :num_actions], action_labels(targets)),
        "scene_acc": _accuracy(scene_slot_logits[:, num_actions:], scene_labels(targets)),
        "matched_action_slot0": jnp.mean((action_slot == 0).astype(jnp.float32)),
    }
    if "action_slot" in outputs:  # does inference-time selection agree with the training matching?
        metrics["selection_agreement"] = jnp.mean((outputs["action_slot"] == action_slot).astype(jnp.float32))
    return loss, metrics


def _action_term(loss_config: Any, action_logits: jax.Array, targets: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    probs = action_target_probs(targets, action_logits.shape[-1], float(loss_config.label_smoothing))
    return soft_cross_entropy(action_logits, probs).mean(), _accuracy(action_logits, action_labels(targets))


def _scene_term(loss_config: Any, scene_logits: jax.Array, targets: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    if loss_config.scene_target == "teacher":
        teacher = _require(targets, "scene_teacher_logits", "with config.loss.scene_target='teacher'")
        term = _kl_weight(loss_config, official_layout=False) * separate_head_teacher_kl(scene_logits, teacher).mean()
    else:
        probs = _one_hot(scene_labels(targets), scene_logits.shape[-1], float(loss_config.label_smoothing))
        term = soft_cross_entropy(scene_logits, probs).mean()
    return term, _accuracy(scene_logits, scene_labels(targets))


# ----------------------------------------------------------------------------------------------------
# One objective per kind of model: (run config, outputs, targets) -> (loss, metrics); devias_jax/methods.py
# says which model uses which
# ----------------------------------------------------------------------------------------------------


def devias_objective(config: Any, outputs: Mapping[str, jax.Array],
                     targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    return devias_loss(config.loss, outputs, targets, int(config.model.num_actions))


def uses_mask_losses(config: Any) -> bool:
    """L_AMD or L_AG is on: DEVIAS's loss needs the clip's FAME mask targets."""
    return config.loss.alpha > 0 or config.loss.beta > 0


def unified_head_objective(config: Any, outputs: Mapping[str, jax.Array],
                           targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    """One-Token / Two-Token with a unified head (supplementary Table 13): L_DE with fixed roles, row 0 of
    `logits` (B, 2, C_a + C_s) scores the action feature, row 1 the scene feature."""
    logits = outputs["logits"]
    num_actions = int(config.model.num_actions)
    loss_action, loss_scene = disentangling_loss(config.loss, logits[:, 0], logits[:, 1], targets, num_actions)
    loss = loss_action + loss_scene
    return loss, {"loss": loss, "loss_de": loss, "loss_action": loss_action, "loss_scene": loss_scene,
                  "action_acc": _accuracy(logits[:, 0, :num_actions], action_labels(targets)),
                  "scene_acc": _accuracy(logits[:, 1, num_actions:], scene_labels(targets))}


def two_head_objective(config: Any, outputs: Mapping[str, jax.Array],
                       targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    """One-Token / Two-Token with separate heads: action cross-entropy + scene cross-entropy (or teacher KL)."""
    loss_action, action_acc = _action_term(config.loss, outputs["action_logits"], targets)
    loss_scene, scene_acc = _scene_term(config.loss, outputs["scene_logits"], targets)
    loss = loss_action + loss_scene
    return loss, {"loss": loss, "loss_action": loss_action, "loss_scene": loss_scene,
                  "action_acc": action_acc, "scene_acc": scene_acc}


def two_task_objective(config: Any, outputs: Mapping[str, jax.Array],
                       targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    """The unified- or the two-head objective, as config.model.unified_head says."""
    objective = unified_head_objective if config.model.unified_head else two_head_objective
    return objective(config, outputs, targets)


def scene_objective(config: Any, outputs: Mapping[str, jax.Array],
                    targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    loss, scene_acc = _scene_term(config.loss, outputs["scene_logits"], targets)
    return loss, {"loss": loss, "loss_scene": loss, "scene_acc": scene_acc}


def action_objective(config: Any, outputs: Mapping[str, jax.Array],
                     targets: Mapping[str, jax.Array]) -> tuple[jax.Array, Metrics]:
    """Action cross-entropy on `action_logits`, or on a plain classifier's `logits`."""
    action_logits = outputs["action_logits"] if "action_logits" in outputs else outputs["logits"]
    loss, action_acc = _action_term(config.loss, action_logits, targets)
    return loss, {"loss": loss, "loss_action": loss, "action_acc": action_acc}
