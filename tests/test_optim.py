"""Optimizer: layer scales, slot scale, decay mask, schedule and one AdamW update by hand."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.defaults import optim_config
from devias_jax import optim
from devias_jax.param_rules import apply_rules, flat_values

DEPTH = 2


def _params():
    """A tiny parameter tree named like the DEVIAS model (backbone ViT + slot module + head)."""
    shape = lambda *s: jnp.ones(s, jnp.float32)  # noqa: E731
    return {
        "patch_embed": {"proj": {"kernel": shape(2, 16, 16, 3, 8), "bias": shape(8)}},
        "cls_token": shape(1, 1, 8),
        "blocks": {i: {"attn": {"qkv": {"kernel": shape(8, 24)}, "q_bias": shape(8), "v_bias": shape(8)},
                       "norm1": {"scale": shape(8), "bias": shape(8)}} for i in range(DEPTH)},
        "fc_norm": {"scale": shape(8), "bias": shape(8)},
        "slot_attention": {"slots": shape(2, 8), "to_q": {"kernel": shape(8, 16)},
                           "norm": {"scale": shape(8), "bias": shape(8)}},
        "head": {"kernel": shape(8, 5), "bias": shape(5)},
    }


def test_layer_scales_and_slot_scale():
    cfg = optim_config()
    scales = flat_values(optim.lr_scale_tree(_params(), depth=DEPTH, layer_decay=0.75,
                                             slot_regex=cfg.slot_param_regex, slot_lr_scale=0.1))
    assert scales["patch_embed/proj/kernel"] == pytest.approx(0.75 ** 3)
    assert scales["cls_token"] == pytest.approx(0.75 ** 3)
    assert scales["blocks/0/attn/qkv/kernel"] == pytest.approx(0.75 ** 2)
    assert scales["blocks/1/norm1/scale"] == pytest.approx(0.75 ** 1)
    assert scales["fc_norm/scale"] == pytest.approx(1.0) and scales["head/kernel"] == pytest.approx(1.0)
    for path in ("slot_attention/slots", "slot_attention/to_q/kernel", "slot_attention/norm/bias"):
        assert scales[path] == pytest.approx(0.1), path  # replaces, not multiplies, the layer scale


def test_decay_mask():
    mask = flat_values(optim.decay_mask_tree(_params(), optim_config().no_decay_regex))
    decayed = sorted(p for p, m in mask.items() if m)
    assert decayed == ["blocks/0/attn/qkv/kernel", "blocks/1/attn/qkv/kernel", "head/kernel",
                       "patch_embed/proj/kernel", "slot_attention/slots", "slot_attention/to_q/kernel"]


def test_uncovered_parameter_is_an_error():
    with pytest.raises(ValueError, match="'head/kernel'"):
        apply_rules({"head": {"kernel": jnp.ones(2)}}, [(r"^blocks/", 1)], "layer id")


def test_lr_scaling_and_schedule_values():
    assert optim.scaled_lr(5e-4, 96) == pytest.approx(1.875e-4)
    assert optim.scaled_lr(5e-4, 96, update_freq=2) == pytest.approx(3.75e-4)
    schedule = optim.Schedule(peak=1.0, final=0.1, warmup_steps=10, total_steps=110)
    expected = {0: 0.0, 5: 0.5, 10: 1.0, 60: 0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)), 110: 0.1, 200: 0.1}
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, abs=1e-6), step


def _config(**overrides):
    cfg = optim_config()
    cfg.update(overrides)
    return cfg


def test_one_adamw_update_by_hand():
    params = _params()
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    cfg = _config(base_lr=256.0, min_lr=256.0, weight_decay=0.1)  # lr = 1 at batch 1 ... scaled below
    tx, schedule = optim.make_optimizer(cfg, params, depth=DEPTH, global_batch_size=1, total_steps=10,
                                        warmup_steps=0)
    updates, _ = tx.update(grads, tx.init(params), params)
    lr = 256.0 / 256.0
    adam = 0.5 / (0.5 + 1e-8)  # first step: m_hat = g, v_hat = g^2
    got = flat_values(updates)
    # decayed kernel in block 0: -lr * 0.75^2 * (adam + wd * p)
    assert float(got["blocks/0/attn/qkv/kernel"][0, 0]) == pytest.approx(-lr * 0.75 ** 2 * (adam + 0.1), rel=1e-5)
    # bias: no decay, top layer
    assert float(got["head/bias"][0]) == pytest.approx(-lr * adam, rel=1e-5)
    # slot latents: decayed, slot scale 0.1
    assert float(got["slot_attention/slots"][0, 0]) == pytest.approx(-lr * 0.1 * (adam + 0.1), rel=1e-5)


def test_gradient_accumulation_and_clipping():
    params = {"head": {"kernel": jnp.zeros((2, 2))}}
    cfg = _config(update_freq=2, weight_decay=0.0, clip_grad_norm=1.0, base_lr=1.0, min_lr=1.0,
                  layer_decay=1.0)
    # lr = 1.0 x (128 clips x 2 accumulation) / 256 = 1
    tx, _ = optim.make_optimizer(cfg, params, depth=0, global_batch_size=128, total_steps=8, warmup_steps=0)
    state = tx.init(params)
    big = {"head": {"kernel": jnp.full((2, 2), 10.0)}}
    small = {"head": {"kernel": jnp.full((2, 2), -2.0)}}
    first, state = tx.update(big, state, params)
    np.testing.assert_array_equal(first["head"]["kernel"], 0.0)  # accumulating
    second, state = tx.update(small, state, params)
    # mean gradient 4.0 per entry -> clipped to norm 1 -> adam normalises to sign -> -lr
    np.testing.assert_allclose(second["head"]["kernel"], -1.0, rtol=1e-5)


def test_official_layer_ids_give_two_tokens_scene_token_full_lr():
    """Ours: every learned token in layer 0 (lr x decay^(depth+1)); the authors' rule leaves Two-Token's
    appended scene token out of layer 0, so it trains at full lr (scale 1); the class token stays at 0."""
    from devias_jax.optim import lr_scale_tree

    params = {"suffix_token": np.zeros((1, 1, 4)), "cls_token": np.zeros((1, 1, 4)),
              "blocks": {"0": {"w": np.zeros(2)}}, "head": {"w": np.zeros(2)}}
    ours = lr_scale_tree(params, depth=2, layer_decay=0.5, slot_regex="^$", slot_lr_scale=1.0)
    official = lr_scale_tree(params, depth=2, layer_decay=0.5, slot_regex="^$", slot_lr_scale=1.0, official=True)
    assert ours["suffix_token"] == 0.5 ** 3 and official["suffix_token"] == 1.0
    assert ours["cls_token"] == official["cls_token"] == 0.5 ** 3
    assert ours["blocks"]["0"]["w"] == official["blocks"]["0"]["w"] == 0.5 ** 2


def test_the_official_switch_reaches_the_optimizer():
    from devias_jax.config_loading import load_config
    from tests.conftest import ROOT

    config = load_config(os.path.join(ROOT, "configs/ucf101.py:method=two_token"))
    assert not config.optim.official_layer_ids
    config.loss.official_compat = True
    assert config.optim.official_layer_ids
