"""On-device batch augmentation inside the train step: FAME masks and their targets, scene mix, BE,
mixup / cutmix and random erasing, chosen by the config (REFERENCE §6-§7). Pure jax; no host work.

`device_augment` is the trainer's default `augment=` (train.build_step); an experiment passes its own, e.g.
this function with another `scene_mix` (scripts/experiments/learning_probe.py)."""

from __future__ import annotations

from typing import Any, Callable

import jax

from devias_jax import masks
from devias_jax.preprocess import normalize

SceneMix = Callable[..., tuple[jax.Array, jax.Array, jax.Array]]  # masks.scene_mix's signature


def uses_mixup(config: Any) -> bool:
    return config.augment.mixup_alpha > 0 or config.augment.cutmix_alpha > 0


def device_augment(config: Any, key: jax.Array, clips01: jax.Array, targets: dict[str, jax.Array], *,
                   groups: int, mask_targets: bool, mix_scale: jax.Array | float = 1.0,
                   scene_mix: SceneMix = masks.scene_mix) -> tuple[jax.Array, dict[str, jax.Array]]:
    """clips01 (B, T, H, W, 3) in [0, 1] -> (normalised model input, targets for the model's objective).

    `mask_targets`: the objective needs the clip's FAME mask targets (DEVIAS's L_AMD, L_AG; the method's
    `Model.mask_targets` in devias_jax/methods.py, resolved once by the trainer). `scene_mix`: the mixing
    function (masks.scene_mix; an experiment may pass another with its signature).

    Scene mix permutes within `groups` contiguous chunks of the batch (one per device by default, as
    the official per-GPU mixing). The action label and the mask targets stay the foreground clip's; the
    scene label becomes the background clip's. `mix_scale` in [0, 1] multiplies the scene-mix
    probability (the trainer's ramp, `augment.scene_mix_ramp`).
    """
    aug = config.augment
    targets = dict(targets)
    mix_key, erase_key, mixup_key, random_erase_key = jax.random.split(key, 4)
    fame = None
    if mask_targets or aug.scene_mix_prob > 0:
        # the official blur size with either switch: official_compat sets every official numeric
        blur = aug.fame_blur_size or masks.blur_size_for(
            clips01.shape[2], bool(aug.fame_official_blur or config.loss.get("official_compat", False)))
        fame = masks.fame_targets(clips01, beta=aug.fame_beta, blur_size=blur, patch=config.model.patch_size,
                                  tubelet_size=config.model.tubelet_size)
    if mask_targets:
        targets["clip_mask_target"] = fame["m_clip"]  # (B, H/16 * W/16)
        targets["tubelet_mask_target"] = fame["m_tub"]  # (B, N) in token order
    if aug.scene_mix_prob > 0:
        clips01, background, _ = scene_mix(mix_key, clips01, fame["clip_mask"], aug.scene_mix_prob * mix_scale,
                                           groups=groups, background=aug.scene_mix_background,
                                           partner=aug.scene_mix_partner)
        if aug.scene_mix_action == "shared":  # the background clip's visible actor shares the label
            share = masks.background_actor_share(fame["clip_mask"], background)[:, None]  # (B, 1)
            own = masks.smooth_one_hot(targets["action"], config.model.num_actions, config.loss.label_smoothing)
            targets["action_soft"] = (1.0 - share) * own + share * own[background]
        targets["scene"] = targets["scene"][background]
    if aug.background_erase_max > 0:
        clips01 = masks.background_erase(erase_key, clips01, aug.background_erase_max)
    if uses_mixup(config):
        soft = targets.get("action_soft")
        if soft is None:
            soft = masks.smooth_one_hot(targets["action"], config.model.num_actions, config.loss.label_smoothing)
        clips01, soft, _ = masks.mixup_cutmix(mixup_key, clips01, soft, mixup_alpha=aug.mixup_alpha,
                                              cutmix_alpha=aug.cutmix_alpha, switch_prob=aug.mixup_switch_prob,
                                              prob=aug.mixup_prob)
        targets["action_soft"] = soft
    clips = normalize(clips01)
    if aug.random_erase_prob > 0:
        clips = masks.random_erasing(random_erase_key, clips, prob=aug.random_erase_prob)
    return clips, targets
