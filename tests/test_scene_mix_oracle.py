"""The scene-mix oracle (scripts/experiments/learning_probe.py: render_with_oracles / oracle_augment; slot_learning_probe --mix_*)
renders and pastes what it says."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scripts.experiments import learning_probe as probe
from devias_jax import masks
from devias_jax.config_loading import load_config
from devias_jax.data import synthetic
from tests.conftest import ROOT

SPEC = synthetic.Spec(num_actions=2, num_scenes=2, height=32, width=32, frames=8, train_per_action=2,
                      val_per_action=1, scene_only_per_scene=1, correlation=0.5)


def test_oracle_channels_are_the_clip_its_actor_free_render_and_the_true_mask():
    frames, action, scene = probe.render_with_oracles(SPEC)
    assert frames.shape == (4, 8, 32, 32, 7) and frames.dtype == np.uint8
    layout = synthetic.plan(SPEC)["train"]
    split = synthetic.SPLITS.index("train")
    for number, (act, scn) in enumerate(layout):
        clip, mask = synthetic.render_clip(SPEC, act, scn, np.random.default_rng([SPEC.seed, split, number]))
        np.testing.assert_array_equal(frames[number, ..., :3], clip)
        np.testing.assert_array_equal(frames[number, ..., 6], mask.astype(np.uint8) * 255)
        free = frames[number, ..., 3:6].astype(int)
        # outside the actor the actor-free render is the same scene (up to the per-frame noise, 2 levels std)
        assert np.abs(free - clip.astype(int))[~mask].mean() < 4
        # where the actor was, it is gone: the actor-free render differs from the clip there
        assert np.abs(free - clip.astype(int))[mask].mean() > 20
        assert (action[number], scene[number]) == (act, scn)


def test_true_paste_on_actor_free_backgrounds():
    """Every mixed clip: its own true actor, frame by frame, on a clip's actor-free render (a random
    permutation may draw the clip itself), and the scene target is that clip's scene."""
    config = load_config(os.path.join(ROOT, "configs", "demo.py:method=devias"))
    config.model.update(num_actions=2, num_scenes=2)
    config.augment.scene_mix_background = "clip"  # the oracle draws the background (the demo's is 'still')
    assert config.augment.scene_mix_prob == 1.0 and config.augment.random_erase_prob == 0
    frames, action, scene = probe.render_with_oracles(SPEC)
    clips01 = jnp.asarray(frames[:, :4], jnp.float32) / 255.0  # (4, 4, 32, 32, 7)
    clips, targets = probe.oracle_augment("actor_free", "true")(
        config, jax.random.key(0), clips01, {"action": jnp.asarray(action), "scene": jnp.asarray(scene)}, groups=1,
        mask_targets=True)
    mixed = np.asarray(masks.denormalize(clips))  # (4, 4, 32, 32, 3) back in [0, 1]
    own, free, actor = np.asarray(clips01[..., :3]), np.asarray(clips01[..., 3:6]), np.asarray(clips01[..., 6:7]) > 0.5
    tolerance = 1e-5  # normalise and back in float32
    for i in range(4):
        np.testing.assert_allclose(np.where(actor[i], mixed[i], 0), np.where(actor[i], own[i], 0), atol=tolerance)
        sources = [j for j in range(4) if np.allclose(np.where(actor[i], 0, mixed[i]),
                                                                 np.where(actor[i], 0, free[j]), atol=tolerance)]
        assert sources, f"clip {i}: outside its actor the mix is no clip's actor-free render"
        assert int(targets["scene"][i]) in {int(scene[j]) for j in sources}
    config.augment.scene_mix_partner = "overlap"  # a choice the oracle would replace is refused, not ignored
    with pytest.raises(ValueError, match="scene_mix_partner"):
        probe.oracle_augment("actor_free", "true")(config, jax.random.key(0), clips01,
                                                  {"action": jnp.asarray(action), "scene": jnp.asarray(scene)},
                                                  groups=1, mask_targets=True)
