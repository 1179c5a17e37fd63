"""Unit tests of the VideoMAE ViT: position table, shapes, token variants, drop path, remat, dtype, init bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from devias_jax.models.vit import VisionTransformer, ViTConfig, sinusoid_table, trunc_normal
from tests.helpers import truncated_normal_leaves

TINY = dict(embed_dim=32, depth=2, num_heads=2, num_frames=4, img_size=32)


def test_sinusoid_table_matches_formula_and_huggingface():
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    table = sinusoid_table(10, 8)
    p, j = 7, 5  # odd j -> cos of p / 10000^(2*2/8)
    assert table[p, j] == pytest.approx(np.cos(p / 10000 ** (4 / 8)), abs=1e-7)
    assert table[p, 4] == pytest.approx(np.sin(p / 10000 ** (4 / 8)), abs=1e-7)
    hf = get_sinusoid_encoding_table(1568, 768).numpy()[0]
    np.testing.assert_array_equal(sinusoid_table(1568, 768), hf)


def test_output_shapes_and_token_order():
    cfg = ViTConfig(**TINY, num_classes=5)
    model = VisionTransformer(cfg, rngs=nnx.Rngs(0))
    out = model(jnp.zeros((3, 4, 32, 32, 3)))
    assert out["tokens"].shape == (3, 2 * 2 * 2, 32)
    assert out["pooled"].shape == (3, 32) and out["logits"].shape == (3, 5)
    # A change confined to frames 2-3, top-left 16x16 patch, must only move token t=1, h=0, w=0 -> 4.
    x = np.zeros((1, 4, 32, 32, 3), np.float32)
    y = x.copy()
    y[:, 2:, :16, :16] = 1.0
    emb_x = model.patch_embed(jnp.asarray(x))
    emb_y = model.patch_embed(jnp.asarray(y))
    changed = np.nonzero(np.abs(np.asarray(emb_x - emb_y)).sum(-1)[0] > 0)[0]
    assert changed.tolist() == [4]


def test_prefix_and_suffix_tokens():
    cfg = ViTConfig(**TINY, pooling="cls", num_prefix_tokens=1, num_suffix_tokens=1, num_classes=3)
    model = VisionTransformer(cfg, rngs=nnx.Rngs(0))
    out = model(jnp.ones((2, 4, 32, 32, 3)))
    assert out["tokens"].shape == (2, 8, 32)
    assert out["prefix_tokens"].shape == (2, 1, 32) and out["suffix_tokens"].shape == (2, 1, 32)
    np.testing.assert_allclose(out["pooled"], out["prefix_tokens"][:, 0], rtol=0, atol=0)
    assert "cls_token" in nnx.state(model, nnx.Param) and "suffix_token" in nnx.state(model, nnx.Param)


def test_head_init_is_scaled_down():
    cfg = ViTConfig(**TINY, num_classes=100)
    kernel = np.asarray(VisionTransformer(cfg, rngs=nnx.Rngs(0)).head.kernel[...])
    assert 0 < kernel.std() < 0.02 * 0.001 * 1.5


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="num_heads"):
        ViTConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        ViTConfig(pooling="max")
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        ViTConfig(pooling="cls")


def test_drop_path_is_random_in_training_and_off_in_eval():
    cfg = ViTConfig(**TINY, drop_path_rate=0.5)
    model = VisionTransformer(cfg, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 4, 32, 32, 3)), jnp.float32)
    eval_a, eval_b = model(x)["tokens"], model(x)["tokens"]
    np.testing.assert_array_equal(eval_a, eval_b)
    train_a = model(x, train=True, rngs=nnx.Rngs(dropout=1))["tokens"]
    train_b = model(x, train=True, rngs=nnx.Rngs(dropout=2))["tokens"]
    assert not np.allclose(train_a, train_b)
    with pytest.raises(ValueError, match="rngs"):
        model(x, train=True)


@pytest.mark.slow
def test_remat_gives_the_same_values_and_gradients():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)), jnp.float32)
    grads = []
    for remat in (False, True):
        model = VisionTransformer(ViTConfig(**TINY, num_classes=3, remat=remat), rngs=nnx.Rngs(0))

        def loss(m):
            return jnp.sum(m(x)["logits"] ** 2) + jnp.sum(m(x)["tokens"] ** 2)

        grads.append(jax.tree.leaves(nnx.grad(loss)(model)))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_params():
    model = VisionTransformer(ViTConfig(**TINY, num_classes=3, dtype="bfloat16"), rngs=nnx.Rngs(0))
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    out = model(jnp.ones((1, 4, 32, 32, 3)))
    assert out["tokens"].dtype == jnp.bfloat16 and out["logits"].dtype == jnp.float32
    reference = VisionTransformer(ViTConfig(**TINY, num_classes=3), rngs=nnx.Rngs(0))(jnp.ones((1, 4, 32, 32, 3)))
    np.testing.assert_allclose(out["tokens"].astype(jnp.float32), reference["tokens"], atol=0.1)


@pytest.mark.slow
def test_convolutional_stem_keeps_the_token_grid_and_validates():
    cfg = ViTConfig(**{**TINY, "num_frames": 8}, tubelet_size=4, patch_size=16, stem_channels=(8, 12), num_classes=3)
    model = VisionTransformer(cfg, rngs=nnx.Rngs(0))
    out = model(jnp.zeros((2, 8, 32, 32, 3)))
    assert out["tokens"].shape == (2, 2 * 2 * 2, 32) and out["logits"].shape == (2, 3)
    from devias_jax.models.vit import stem_strides

    assert stem_strides(cfg) == [(2, 2, 2), (2, 2, 2)]  # time halves while the tubelet allows
    assert stem_strides(ViTConfig(**TINY, tubelet_size=2, stem_channels=(8, 12))) == [(2, 2, 2), (1, 2, 2)]
    params = nnx.state(model, nnx.Param).to_pure_dict()["patch_embed"]
    assert set(params) == {"stem", "proj"} and params["proj"]["kernel"].shape == (1, 4, 4, 12, 32)
    # the stem is local: a change in the first 4 frames moves only tokens of the first temporal slice
    x = np.zeros((1, 8, 32, 32, 3), np.float32)
    y = x.copy()
    y[:, :2, 20:, 20:] = 1.0
    moved = np.abs(np.asarray(model.patch_embed(jnp.asarray(x)) - model.patch_embed(jnp.asarray(y)))).sum(-1)[0]
    assert (moved[4:] == 0).all() and moved[:4].max() > 0
    with pytest.raises(ValueError, match=r"stem_channels=\(8, 12, 16, 24, 32\).*multiple of 32"):
        ViTConfig(**TINY, stem_channels=(8, 12, 16, 24, 32))


TRUNCATED_STD = 0.87962566  # std of a standard normal truncated at +-2


@pytest.mark.parametrize("bounds,expected_std", [("std", 0.02 * TRUNCATED_STD), ("absolute", 0.02)])
def test_trunc_normal_std_cuts_at_two_std_and_absolute_is_timms_normal(bounds, expected_std):
    n = 512 * 512
    kernel = np.asarray(trunc_normal(0.02, bounds=bounds)(jax.random.key(0), (512, 512)), np.float64)
    tolerance = 5 * expected_std / np.sqrt(2 * n)  # 5 standard errors of a sample std (normal: sigma/sqrt(2n))
    assert abs(kernel.std() - expected_std) < tolerance, (kernel.std(), expected_std, tolerance)
    assert abs(kernel.mean()) < 5 * expected_std / np.sqrt(n)
    beyond = np.mean(np.abs(kernel) > 2 * 0.02)  # untruncated: P(|z| > 2) = 4.55%
    if bounds == "std":
        assert beyond == 0
    else:
        assert abs(beyond - 0.0455) < 5 * np.sqrt(0.0455 * 0.9545 / n) and np.abs(kernel).max() < 6 * 0.02
    scaled = trunc_normal(0.02, 0.001, bounds)(jax.random.key(0), (512, 512))
    np.testing.assert_allclose(scaled, 0.001 * kernel, rtol=1e-6)


def test_trunc_normal_absolute_bounds_still_cut_when_they_are_within_reach():
    # std 1: the absolute cut +-2 is +-2 std, so 'absolute' and 'std' are the same distribution.
    n = 256 * 256
    kernel = np.asarray(trunc_normal(1.0, bounds="absolute")(jax.random.key(1), (256, 256)), np.float64)
    assert np.abs(kernel).max() <= 2.0
    assert abs(kernel.std() - TRUNCATED_STD) < 5 * TRUNCATED_STD / np.sqrt(2 * n)
    with pytest.raises(ValueError, match="init_bounds"):
        trunc_normal(0.02, bounds="sigma")
    with pytest.raises(ValueError, match="init_bounds"):
        ViTConfig(**TINY, init_bounds="timm")


def test_init_bounds_reach_every_linear_and_token_and_nothing_else():
    cfg = dict(TINY, pooling="cls", num_prefix_tokens=1, num_suffix_tokens=1, num_classes=7)
    ours, ours_rest = truncated_normal_leaves(VisionTransformer(ViTConfig(**cfg), rngs=nnx.Rngs(0)))
    official, official_rest = truncated_normal_leaves(
        VisionTransformer(ViTConfig(**cfg, init_bounds="absolute"), rngs=nnx.Rngs(0)))
    assert set(ours) == {"cls_token", "suffix_token", "head/kernel"} | {
        f"blocks/{i}/{name}/kernel" for i in range(2) for name in ("attn/qkv", "attn/proj", "mlp/fc1", "mlp/fc2")}
    for name, value in ours.items():
        scale = 0.001 if name == "head/kernel" else 1.0
        assert np.abs(value).max() <= 2 * 0.02 * scale, name  # 'std': cut at +-2 std
        assert not np.array_equal(value, official[name]), name  # 'absolute' reached this parameter
    # one key per parameter under either choice: everything else is bit-identical
    assert set(ours_rest) == set(official_rest)
    for name, value in ours_rest.items():
        np.testing.assert_array_equal(value, official_rest[name], err_msg=name)
