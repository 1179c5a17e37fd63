"""FAME pseudo human masks, patch-fraction targets and the on-device mixing augmentations."""

import colorsys
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from devias_jax import masks
from devias_jax.data import decode, synthetic
from tests.conftest import ROOT
from tests.data_helpers import TINY, tiny_dataset


def test_masks_module_never_imports_tensorflow():
    code = ("import sys, devias_jax.masks, devias_jax.data, devias_jax.data.annotations, devias_jax.data.decode, "
            "devias_jax.data.augment, devias_jax.data.synthetic, devias_jax.data.sources, devias_jax.data.streams, "
            "devias_jax.train, devias_jax.evaluate; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_blur_size_and_kernel():
    assert masks.blur_size_for(224) == 23 and masks.blur_size_for(112) == 11 and masks.blur_size_for(64) == 7
    assert masks.blur_size_for(224, official_quirk=True) == 11 and masks.blur_size_for(64, True) == 11
    taps = masks._gaussian_taps(11)
    assert abs(taps.sum() - 1) < 1e-6 and np.argmax(taps) == 5
    np.testing.assert_allclose(taps[4] / taps[5], math.exp(-0.5 * (1 / (11 / 3)) ** 2), rtol=1e-5)
    flat = jnp.full((2, 16, 16), 0.7)
    np.testing.assert_allclose(masks.gaussian_blur(flat, 7), flat, atol=1e-6)
    # Reflect padding (not edge, not zeros): blurring a ramp keeps it symmetric about the borders.
    ramp = jnp.tile(jnp.arange(16.0), (16, 1))[None]
    blurred = np.asarray(masks.gaussian_blur(ramp, 5))
    taps5 = masks._gaussian_taps(5)
    padded = np.pad(np.arange(16.0), 2, mode="reflect")
    np.testing.assert_allclose(blurred[0, 0], np.convolve(padded, taps5[::-1], mode="valid"), atol=1e-5)


def _reference_bins(pixels):
    """FAME colour bins with colorsys (independent HSV)."""
    out = []
    for r, g, b in pixels:
        hue, _, _ = colorsys.rgb_to_hsv(r, g, b)
        high, low = max(r, g, b), min(r, g, b)
        sat = (high - low) / (high + 1e-6)
        hue_rad = hue * 2 * math.pi
        hx = (sat * math.cos(2 * math.pi * hue_rad) + 1) / 2
        hy = (sat * math.sin(2 * math.pi * hue_rad) + 1) / 2
        h, s, v = (int(np.round(9 * x + 1)) for x in (hx, hy, high))
        out.append(h + 10 * (s - 1) + 100 * (v - 1) - 1)
    return np.asarray(out)


def test_colour_bins_match_reference():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 1, (2000, 3)).astype(np.float32)
    pixels[:10] = [[0.5, 0.5, 0.5]] * 5 + [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 1]]
    got = np.asarray(masks.colour_bins(jnp.asarray(pixels)))
    expected = _reference_bins(pixels.astype(np.float64))
    assert got.min() >= 0 and got.max() < masks.NUM_COLOUR_BINS
    assert (got == expected).mean() > 0.998  # float32 vs float64 may differ exactly at .5 roundings
    np.testing.assert_array_equal(got[:10], expected[:10])


def _decoded_tiny_clips(split="val_seen", frames=8, stride=4):
    """Decoded clips of a generated split plus the generator's true actor masks at the same frames."""
    root = tiny_dataset()
    decoder = decode.VideoDecoder()
    clips, truth = [], []
    with open(os.path.join(root, f"{split}.txt")) as handle:
        for line in handle:
            path = line.split()[0]
            index = decode.test_indices(TINY.frames, frames, stride, 1)[0]
            clips.append(decoder.read(os.path.join(root, path), lambda n: index))
            mask_path = os.path.join(root, path.replace("videos", "masks").replace(".mp4", ".npz"))
            truth.append(synthetic.load_actor_mask(mask_path)[index])
    return np.stack(clips), np.stack(truth)


def test_fame_on_synthetic_videos_finds_the_actor():
    clips, truth = _decoded_tiny_clips()
    beta = 0.25
    fame = jax.jit(masks.fame_targets, static_argnums=(1, 2, 3))
    out = fame(masks.to_unit(jnp.asarray(clips)), beta, masks.blur_size_for(64), 16)
    clip_mask = np.asarray(out["clip_mask"])
    tubelet_mask = np.asarray(out["tubelet_mask"])
    batch = len(clips)
    assert clip_mask.shape == (batch, 64, 64) and tubelet_mask.shape == (batch, 4, 64, 64)
    count = math.floor(beta * 64 * 64)
    assert set(np.unique(clip_mask)) <= {0.0, 1.0} and set(np.unique(tubelet_mask)) <= {0.0, 1.0}
    assert (clip_mask.sum(axis=(1, 2)) == count).all() and (tubelet_mask.sum(axis=(2, 3)) == count).all()
    actor = truth.any(axis=1)  # where the actor is during the clip
    fame_fg = clip_mask > 0.5
    iou = (fame_fg & actor).sum(axis=(1, 2)) / (fame_fg | actor).sum(axis=(1, 2))
    assert iou.mean() >= 0.5, iou
    # Each tubelet's mask overlaps its own frames' actor better than chance (the actor's area share).
    tub_actor = truth[:, 0::2] | truth[:, 1::2]
    precision = (tub_actor & (tubelet_mask > 0.5)).sum(axis=(2, 3)) / count
    assert precision.mean() > 2 * tub_actor.mean(), precision.mean()
    # Patch-fraction targets agree with the masks.
    assert out["m_clip"].shape == (batch, 16) and out["m_tub"].shape == (batch, 4 * 16)
    np.testing.assert_allclose(np.asarray(out["m_clip"]).mean(axis=1), count / 4096, atol=1e-6)


def test_exact_count_with_ties():
    clips = jnp.concatenate([jnp.full((1, 4, 32, 32, 3), 0.5),  # no motion, one colour: everything ties
                             jax.random.uniform(jax.random.key(0), (1, 4, 32, 32, 3))])
    for beta in (0.3, 0.5, 0.77):
        clip_mask, tubelet_mask = masks.fame_masks(clips, beta, 3)
        count = math.floor(beta * 32 * 32)
        np.testing.assert_array_equal(np.asarray(clip_mask).sum(axis=(1, 2)), [count, count])
        np.testing.assert_array_equal(np.asarray(tubelet_mask).sum(axis=(2, 3)), [[count] * 2] * 2)
    # Ties go to the lowest row-major indices, deterministically.
    first = np.asarray(masks.fame_masks(clips[:1], 0.25, 3)[0])[0].reshape(-1)
    np.testing.assert_array_equal(np.nonzero(first)[0], np.arange(256))


def test_tubelet_masks_use_their_own_frame_pair():
    clips = np.full((1, 8, 64, 64, 3), 0.3, np.float32)
    clips[:, :, :, :, 1] = np.linspace(0.2, 0.4, 64)[None, None, None, :]
    # A square that is present only in frame 3: the pairs (2,3) and (3,4) move; tubelet 1 = frames (2, 3).
    clips[0, 3, 32:48, 16:32] = [0.9, 0.1, 0.1]  # exactly token row 2, column 1
    out = masks.fame_targets(jnp.asarray(clips), 0.0625, 5, 16)
    m_tub = np.asarray(out["m_tub"]).reshape(1, 4, 4, 4)  # (B, t, h, w) in token order
    assert m_tub[0, 1].argmax() == 2 * 4 + 1 and m_tub[0, 1, 2, 1] > 0.8
    tub = np.asarray(out["tubelet_mask"])[0, 1]
    assert tub[32:48, 16:32].mean() > 0.8
    clip = np.asarray(out["clip_mask"])[0]
    assert clip[32:48, 16:32].mean() > 0.8
    assert m_tub[0, [0, 2, 3], 2, 1].max() < 0.5  # the other pairs see no motion there


def test_patch_fractions_token_order():
    rng = np.random.default_rng(0)
    mask = (rng.uniform(size=(2, 3, 32, 48)) > 0.5).astype(np.float32)
    got = np.asarray(masks.patch_fractions(jnp.asarray(mask), 16))
    assert got.shape == (2, 3 * 2 * 3)
    for t in range(3):
        for h in range(2):
            for w in range(3):
                token = t * 2 * 3 + h * 3 + w  # REFERENCE §2 token index t (H/16)(W/16) + h (W/16) + w
                np.testing.assert_allclose(got[:, token], mask[:, t, h * 16:(h + 1) * 16, w * 16:(w + 1) * 16]
                                           .mean(axis=(1, 2)), rtol=1e-6)
    clip = np.asarray(masks.patch_fractions(jnp.asarray(mask[:, 0]), 16))
    np.testing.assert_allclose(clip, got[:, :6], rtol=1e-6)


def test_fame_is_jit_and_vmap_friendly():
    clips = jax.random.uniform(jax.random.key(1), (4, 4, 32, 32, 3))
    direct = masks.fame_targets(clips, 0.3, 3)
    jitted = jax.jit(lambda c: masks.fame_targets(c, 0.3, 3))(clips)
    vmapped = jax.vmap(lambda c: masks.fame_targets(c, 0.3, 3))(clips.reshape(2, 2, 4, 32, 32, 3))
    for key in direct:
        np.testing.assert_allclose(jitted[key], direct[key], atol=1e-6)
        np.testing.assert_allclose(vmapped[key].reshape(direct[key].shape), direct[key], atol=1e-6)


def _labelled_clips(batch=6):
    clips = np.zeros((batch, 4, 16, 16, 3), np.float32)
    clips += np.arange(batch, dtype=np.float32)[:, None, None, None, None]  # clip i is all value i
    return jnp.asarray(clips)


def test_scene_mix_keeps_the_foreground():
    clips = _labelled_clips()
    rng = np.random.default_rng(0)
    clip_mask = jnp.asarray((rng.uniform(size=(6, 16, 16)) > 0.6).astype(np.float32))
    mixed_clips, background, mixed = masks.scene_mix(jax.random.key(3), clips, clip_mask, prob=1.0)
    out, background, mixed = np.asarray(mixed_clips), np.asarray(background), np.asarray(mixed)
    assert mixed.all() and sorted(background.tolist()) == list(range(6))  # a permutation
    fg = np.asarray(clip_mask) > 0.5
    for i in range(6):
        np.testing.assert_array_equal(out[i][:, fg[i]], i)  # the foreground is clip i's
        np.testing.assert_array_equal(out[i][:, ~fg[i]], background[i])  # the rest is the background clip's
    scene = jnp.arange(6) * 10
    np.testing.assert_array_equal(scene[background], background * 10)  # labels follow via indexing
    # prob 0: nothing changes; integer clips keep their dtype.
    same, background, mixed = masks.scene_mix(jax.random.key(3), clips.astype(jnp.uint8), clip_mask, prob=0.0)
    assert same.dtype == jnp.uint8 and not np.asarray(mixed).any()
    np.testing.assert_array_equal(background, np.arange(6))
    np.testing.assert_array_equal(same, clips.astype(jnp.uint8))
    # Roughly a fraction prob of the clips is mixed.
    fractions = [np.asarray(masks.scene_mix(jax.random.key(s), clips, clip_mask, 0.4)[2]).mean() for s in range(200)]
    assert abs(np.mean(fractions) - 0.4) < 0.05


def _clips_with_actors(batch=6, size=32):
    """Clip i: background value 10 i everywhere, an actor square of value 100 + i at a position of its
    own; returns (clips (B, 4, S, S, 3), clip masks (B, S, S) covering exactly the actors)."""
    clips = np.zeros((batch, 4, size, size, 3), np.float32)
    clip_mask = np.zeros((batch, size, size), np.float32)
    for i in range(batch):
        y, x = 2 + 4 * i, 20 - 3 * i
        clips[i] = 10.0 * i
        clips[i, :, y:y + 8, x:x + 8] = 100.0 + i
        clip_mask[i, y:y + 8, x:x + 8] = 1.0
    return jnp.asarray(clips), jnp.asarray(clip_mask)


@pytest.mark.parametrize("background_mode", ["clip", "inpaint"])
def test_scene_mix_background_clip_keeps_or_removes_its_own_actor(background_mode):
    """'clip' (official) copies the background clip as it is, so its actor shows where clip i has no
    foreground; 'inpaint' fills the background clip's own foreground from its surroundings, so outside
    clip i's mask only the background clip's scene (value 10 pi(i)) is left."""
    clips, clip_mask = _clips_with_actors()
    out, background, mixed = masks.scene_mix(jax.random.key(3), clips, clip_mask, prob=1.0,
                                             background=background_mode)
    out, background, fg = np.asarray(out), np.asarray(background), np.asarray(clip_mask) > 0.5
    assert np.asarray(mixed).all()
    others = [i for i in range(6) if background[i] != i]
    assert len(others) >= 4
    for i in others:
        j = background[i]
        np.testing.assert_array_equal(out[i][:, fg[i]], 100.0 + i)  # clip i's actor
        visible_other = fg[j] & ~fg[i]  # where the background clip's actor was and clip i's is not
        assert visible_other.any()
        if background_mode == "clip":
            np.testing.assert_array_equal(out[i][:, visible_other], 100.0 + j)
        else:
            # the fill is a mean of pixels that all equal 10 j (float sums: a few ulps of 10 j)
            np.testing.assert_allclose(out[i][:, ~fg[i]], 10.0 * j, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="background"):
        masks.scene_mix(jax.random.key(3), clips, clip_mask, prob=1.0, background="blur")


def test_scene_mix_still_background_freezes_the_background_clip():
    """'still': outside clip i's mask, every frame shows one frame of the background clip (its actor
    included, frozen); inside it clip i moves as it did. Frames differ by +t here, so a frozen frame is
    one value over time and the frame it came from is recoverable."""
    clips, clip_mask = _clips_with_actors()
    clips = clips + jnp.arange(4.0)[None, :, None, None, None]  # frame t adds t: the clips change in time
    out, background, mixed = masks.scene_mix(jax.random.key(5), clips, clip_mask, prob=1.0, background="still")
    out, background, fg = np.asarray(out), np.asarray(background), np.asarray(clip_mask) > 0.5
    assert np.asarray(mixed).all()
    frames = []
    for i in range(6):
        j = background[i]
        np.testing.assert_array_equal(out[i][:, fg[i]], np.asarray(clips)[i][:, fg[i]])  # clip i, moving
        rest = out[i][:, ~fg[i]]  # (T, pixels, C)
        np.testing.assert_array_equal(rest, np.broadcast_to(rest[:1], rest.shape))  # frozen in time
        frame = int(rest[0].min() - 10.0 * j)  # background value 10 j + frame index
        assert 0 <= frame < 4
        np.testing.assert_array_equal(rest[0], np.asarray(clips)[j, frame][~fg[i]])
        frames.append(frame)
        if j != i:
            assert (rest[0] == 100.0 + j + frame).any()  # the background clip's own actor, frozen
    assert len(set(frames)) > 1  # the frame is drawn per clip


def test_inpaint_fills_a_fully_masked_window_with_the_frame_mean():
    """A mask covering whole windows: the fill falls back to the frame's mean unmasked colour."""
    clips = jnp.concatenate([jnp.full((1, 2, 16, 8, 3), 4.0), jnp.full((1, 2, 16, 8, 3), 8.0)], axis=3)
    clip_mask = jnp.zeros((1, 16, 16)).at[:, :, :12].set(1.0)  # only columns 12..15 (value 8) unmasked
    filled = np.asarray(masks.inpaint_foreground(clips, clip_mask))
    np.testing.assert_allclose(filled, 8.0, rtol=1e-6)


def test_scene_mix_per_group_stays_in_its_group():
    clips = _labelled_clips(8)
    clip_mask = jnp.zeros((8, 16, 16))
    out, background, mixed = masks.scene_mix(jax.random.key(0), clips, clip_mask, prob=1.0, groups=2)
    background = np.asarray(background)
    assert sorted(background[:4].tolist()) == [0, 1, 2, 3] and sorted(background[4:].tolist()) == [4, 5, 6, 7]
    np.testing.assert_array_equal(np.asarray(out)[:, 0, 0, 0, 0], background)  # mask 0: all background


def test_background_actor_share_counts_the_other_foreground_left_visible():
    """Clip 0's mask covers columns 0..3, clip 1's columns 2..5, clip 2's columns 0..3 (4 x 16 each)."""
    clip_mask = jnp.zeros((3, 16, 16))
    clip_mask = clip_mask.at[0, :, 0:4].set(1.0).at[1, :, 2:6].set(1.0).at[2, :, 0:4].set(1.0)
    background = jnp.array([1, 0, 2])  # 0 on 1's background, 1 on 0's, 2 not mixed
    share = np.asarray(masks.background_actor_share(clip_mask, background))
    # clip 0: 1's columns 4..5 stay visible (32 px) next to its own 64 px -> 32 / 96
    np.testing.assert_allclose(share, [32 / 96, 32 / 96, 0.0], rtol=1e-6)
    fully_hidden = masks.background_actor_share(clip_mask, jnp.array([2, 1, 0]))  # 0 and 2 share one mask
    np.testing.assert_allclose(np.asarray(fully_hidden), [0.0, 0.0, 0.0])


def test_shared_scene_mix_action_target_gives_the_visible_actor_its_share():
    from devias_jax.config_loading import load_config
    from devias_jax.train_augment import device_augment

    config = load_config(os.path.join(ROOT, "configs", "demo.py:method=devias"))
    config.augment.update(scene_mix_prob=1.0, scene_mix_action="shared")
    clips = jax.random.uniform(jax.random.key(0), (4, 4, 64, 64, 3))  # noise: the FAME masks differ
    labels = np.array([0, 1, 2, 3])
    targets = {"action": jnp.asarray(labels), "scene": jnp.array([0, 1, 0, 1])}
    _, out = device_augment(config, jax.random.key(1), clips, targets, groups=1, mask_targets=True)
    soft = np.asarray(out["action_soft"])  # (4, 6)
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
    own = soft[np.arange(4), labels]
    assert (own >= 0.5 - 1e-6).all() and (own < 1.0).any()  # the pasted actor keeps at least half
    assert ((soft > 0).sum(-1) <= 2).all()  # the rest goes to one other clip's action
    config.augment.scene_mix_action = "foreground"
    _, official = device_augment(config, jax.random.key(1), clips, targets, groups=1, mask_targets=True)
    assert "action_soft" not in official  # the official target is clip i's label alone


def test_overlap_partners_pick_the_background_whose_actor_is_hidden_best():
    """Masks (16 x 16): clip 0 columns 0..7, clip 1 columns 0..3 (inside clip 0's), clip 2 columns 8..15."""
    clip_mask = jnp.zeros((3, 16, 16)).at[0, :, :8].set(1.0).at[1, :, :4].set(1.0).at[2, :, 8:].set(1.0)
    # visible [i, j] = j's foreground outside i's: row 0 (-, 0, 128), row 1 (64, -, 128), row 2 (128, 64, -)
    np.testing.assert_array_equal(np.asarray(masks.overlap_partners(jax.random.key(0), clip_mask)), [1, 0, 1])
    clips = _labelled_clips(3)
    _, background, mixed = masks.scene_mix(jax.random.key(0), clips, clip_mask,
                                           prob=1.0, partner="overlap")
    np.testing.assert_array_equal(np.asarray(background), [1, 0, 1])
    with pytest.raises(ValueError, match="partner"):
        masks.scene_mix(jax.random.key(0), clips, clip_mask, prob=1.0, partner="nearest")


def test_scene_mix_ramp_scale_zero_mixes_nothing():
    from devias_jax.config_loading import load_config
    from devias_jax.train_augment import device_augment

    config = load_config(os.path.join(ROOT, "configs", "demo.py:method=devias"))
    assert config.augment.scene_mix_prob == 1.0
    clips = jax.random.uniform(jax.random.key(0), (4, 4, 64, 64, 3))
    targets = {"action": jnp.arange(4), "scene": jnp.arange(4)}
    _, unmixed = device_augment(config, jax.random.key(1), clips, targets, groups=1, mask_targets=True, mix_scale=0.0)
    np.testing.assert_array_equal(np.asarray(unmixed["scene"]), np.arange(4))
    _, mixed = device_augment(config, jax.random.key(1), clips, targets, groups=1, mask_targets=True, mix_scale=1.0)
    assert (np.asarray(mixed["scene"]) != np.arange(4)).any()


def test_background_erase():
    clips = jnp.broadcast_to(jnp.arange(8.0)[None, :, None, None, None], (5, 8, 4, 4, 3))  # frame j == j
    for seed in range(5):
        out = np.asarray(masks.background_erase(jax.random.key(seed), clips, 0.3))[:, :, 0, 0, 0]
        # out[b, j] = (1 - lam) j + lam k_b: slope (1 - lam) shared by the batch, offset lam k_b
        slope = out[:, 1] - out[:, 0]
        np.testing.assert_allclose(slope, slope[0], atol=1e-5)
        lam = 1 - slope[0]
        assert 0 <= lam < 0.3
        if lam > 1e-3:
            k = out[:, 0] / lam
            np.testing.assert_allclose(k, np.round(k), atol=1e-3)
            assert ((np.round(k) >= 0) & (np.round(k) < 8)).all()


def test_smooth_one_hot_and_mixup_cutmix():
    labels = jnp.array([0, 2, 1, -1])
    soft = np.asarray(masks.smooth_one_hot(labels, 3, 0.1))
    np.testing.assert_allclose(soft[0], [1 - 0.1 + 0.1 / 3, 0.1 / 3, 0.1 / 3], rtol=1e-6)
    np.testing.assert_array_equal(soft[3], 0)
    clips = _labelled_clips(4)
    targets = {"action": masks.smooth_one_hot(jnp.array([0, 1, 2, 3]), 4), "scene": jnp.eye(4)[::-1]}
    out, mixed, lam = masks.mixup_cutmix(jax.random.key(0), clips, targets, mixup_alpha=0.8, cutmix_alpha=0.0)
    lam = float(lam)
    np.testing.assert_allclose(out, lam * clips + (1 - lam) * clips[::-1], atol=1e-5)
    np.testing.assert_allclose(mixed["action"][0], [lam, 0, 0, 1 - lam], atol=1e-6)
    np.testing.assert_allclose(np.asarray(mixed["scene"]).sum(axis=1), 1, atol=1e-6)
    for seed in range(5):
        out, mixed, lam = masks.mixup_cutmix(jax.random.key(seed), clips, targets, mixup_alpha=0.0,
                                             cutmix_alpha=1.0)
        pasted = np.asarray(out)[0, 0, :, :, 0] == 3  # clip 0 gets a box of clip 3
        np.testing.assert_allclose(float(lam), 1 - pasted.mean(), atol=1e-6)  # lambda = kept area
        np.testing.assert_allclose(mixed["action"][0, 0], lam, atol=1e-6)
        assert (np.asarray(out)[0] == np.asarray(out)[0, :1]).all()  # the same box on every frame
    out, mixed, lam = masks.mixup_cutmix(jax.random.key(0), clips, targets, mixup_alpha=0.8,
                                         cutmix_alpha=1.0, prob=0.0)
    assert float(lam) == 1.0 and np.allclose(out, clips)


def test_random_erasing():
    clips = jnp.ones((2, 4, 32, 32, 3))
    np.testing.assert_array_equal(masks.random_erasing(jax.random.key(0), clips, prob=0.0), clips)
    out = np.asarray(masks.random_erasing(jax.random.key(0), clips, prob=1.0))
    erased = (out != 1).any(axis=-1)  # (B, T, H, W)
    area = erased.mean(axis=(2, 3))
    assert (area > 0.01).all() and (area < 0.4).all()
    assert not (erased[:, 0] == erased[:, 1]).all()  # per-frame boxes, as VideoMAE applies it
    out = np.asarray(masks.random_erasing(jax.random.key(0), clips, prob=1.0, per_frame=False))
    erased = (out != 1).any(axis=-1)
    assert (erased[:, 0] == erased[:, 3]).all()


def test_normalize_round_trip():
    clips = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 2, 4, 4, 3), dtype=np.uint8))
    unit = masks.to_unit(clips)
    assert float(unit.max()) <= 1.0 and unit.dtype == jnp.float32
    np.testing.assert_allclose(masks.denormalize(masks.normalize(unit)), unit, atol=1e-6)
    np.testing.assert_allclose(masks.normalize(unit)[..., 0], (unit[..., 0] - 0.485) / 0.229, atol=1e-6)
