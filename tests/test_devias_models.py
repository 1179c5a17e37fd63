"""DEVIAS and the baselines: build from every recipe method, output contract, slot selection, token layout,
dropout, the training step of scripts/benchmark.py, config errors that name their key, init bounds."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from devias_jax import config_validation, load_model
from devias_jax.config_loading import load_config
from devias_jax.methods import build_model
from devias_jax.models.devias import devias_config_from, select_slots
from tests.conftest import ROOT
from tests.helpers import random_clips, truncated_normal_leaves

C_A, C_S = 101, 365  # ucf101 recipe: 101 actions, Places365 scenes
B, N, P, D = 2, 8, 4, 32  # smoke: 4 frames of 32x32 -> 2x2x2 tokens, 2x2 patches per frame, width 32

CONTRACT = {
    "devias": {"action_logits": (B, C_A), "scene_logits": (B, C_S), "action_feature": (B, D),
               "scene_feature": (B, D), "tokens": (B, N, D), "slots": (B, 2, D), "attention": (B, 2, N),
               "logits": (B, 2, C_A + C_S), "action_mask": (B, 2, P), "action_slot": (B,), "scene_slot": (B,)},
    "one_token": {"action_logits": (B, C_A), "scene_logits": (B, C_S), "action_feature": (B, D),
                  "scene_feature": (B, D)},
    "one_token_unified": {"action_logits": (B, C_A), "scene_logits": (B, C_S), "logits": (B, 2, C_A + C_S)},
    "two_token": {"action_logits": (B, C_A), "scene_logits": (B, C_S), "action_feature": (B, D),
                  "scene_feature": (B, D)},
    "two_token_unified": {"action_logits": (B, C_A), "scene_logits": (B, C_S), "logits": (B, 2, C_A + C_S)},
    "action_vit": {"action_logits": (B, C_A), "action_feature": (B, D)},
    "scene_vit": {"scene_logits": (B, C_S), "scene_feature": (B, D)},
    "devias_downstream": {"action_logits": (B, C_A), "action_feature": (B, D), "scene_feature": (B, D)},
}


def smoke_config(method: str, **overrides):
    return load_config(os.path.join(ROOT, f"configs/ucf101.py:method={method},smoke"), overrides)


@pytest.mark.parametrize("method", sorted(CONTRACT))
def test_methods_build_from_configs_and_honour_the_output_contract(method):
    config = smoke_config(method)
    config_validation.validate(config)
    model = build_model(config.model, rngs=nnx.Rngs(0))
    out = model(jnp.asarray(random_clips()), train=False)
    for key, shape in CONTRACT[method].items():
        assert tuple(out[key].shape) == shape, (key, out[key].shape)
    for key in ("action_logits", "scene_logits", "logits"):
        if key in out:
            assert out[key].dtype == jnp.float32


def test_devias_selected_outputs_and_four_slots():
    config = smoke_config("devias", **{"model.num_slots": 4})
    predictor = load_model(config)  # random weights, jitted
    out = predictor(random_clips(batch=3))
    assert out["slots"].shape == (3, 4, D) and out["attention"].shape == (3, 4, N)
    rows = np.arange(3)
    action_slot, scene_slot = np.asarray(out["action_slot"]), np.asarray(out["scene_slot"])
    np.testing.assert_array_equal(out["action_logits"], np.asarray(out["logits"])[rows, action_slot, :C_A])
    np.testing.assert_array_equal(out["scene_logits"], np.asarray(out["logits"])[rows, scene_slot, C_A:])
    np.testing.assert_array_equal(out["action_feature"], np.asarray(out["slots"])[rows, action_slot])
    np.testing.assert_allclose(np.asarray(out["attention"]).sum(axis=1), 1.0, atol=1e-5)
    assert np.all((np.asarray(out["action_mask"]) > 0) & (np.asarray(out["action_mask"]) < 1))


def test_select_slots_is_an_independent_argmax():
    # Two actions, one scene. Slot 1 holds the most confident action AND the most confident scene.
    logits = jnp.log(jnp.array([[[0.5, 0.3, 0.2], [0.6, 0.0001, 0.3999], [0.1, 0.1, 0.8]]]))
    action_slot, scene_slot = select_slots(logits, num_actions=2)
    assert action_slot.tolist() == [1] and scene_slot.tolist() == [2]
    logits = jnp.log(jnp.array([[[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]]]))
    assert [int(s[0]) for s in select_slots(logits, 2)] == [0, 1]
    logits = jnp.log(jnp.array([[[0.2, 0.2, 0.6], [0.7, 0.0, 0.3]]]))
    action_slot, scene_slot = select_slots(logits, 2)
    assert action_slot.tolist() == [1] and scene_slot.tolist() == [0]


def test_two_token_layout_class_token_first_scene_token_last():
    config = smoke_config("two_token")
    model = build_model(config.model, rngs=nnx.Rngs(0))
    clips = jnp.asarray(random_clips())
    sequence = model.encode(clips)
    assert sequence.shape == (B, N + 2, D)  # the sinusoid table covers N + 2 positions
    out = model(clips)
    np.testing.assert_array_equal(out["action_feature"], sequence[:, 0])
    np.testing.assert_array_equal(out["scene_feature"], sequence[:, -1])
    params = nnx.state(model, nnx.Param)
    assert params["cls_token"].shape == (1, 1, D) and params["suffix_token"].shape == (1, 1, D)
    assert params["head"]["kernel"].shape == (D, C_A) and params["scene_head"]["kernel"].shape == (D, C_S)
    unified = build_model(smoke_config("two_token_unified").model, rngs=nnx.Rngs(0))
    assert unified.scene_head is None and unified.head.kernel.shape == (D, C_A + C_S)


def test_head_dropout_is_active_only_in_training():
    config = smoke_config("devias", **{"model.head_dropout": 0.5})
    model = build_model(config.model, rngs=nnx.Rngs(0))
    clips = jnp.asarray(random_clips())
    np.testing.assert_array_equal(model(clips)["logits"], model(clips)["logits"])
    a = model(clips, train=True, rngs=nnx.Rngs(dropout=1))["logits"]
    b = model(clips, train=True, rngs=nnx.Rngs(dropout=2))["logits"]
    assert not np.allclose(a, b)


def test_bfloat16_devias_keeps_float32_params_and_outputs():
    config = smoke_config("devias", **{"model.dtype": "bfloat16"})
    model = build_model(config.model, rngs=nnx.Rngs(0))
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    out = model(jnp.asarray(random_clips()))
    assert out["logits"].dtype == jnp.float32 and out["attention"].dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(out["logits"])))


@pytest.mark.parametrize("method,overrides", [("devias", {}), ("devias", {"loss.official_compat": True,
                                                                         "loss.scene_target": "teacher",
                                                                         "loss.matching": "scipy"}),
                                              ("two_token", {"loss.scene_target": "teacher"})])
@pytest.mark.slow
def test_benchmark_train_step_gives_finite_gradients_and_updates(method, overrides):
    sys.path.insert(0, ROOT)
    from devias_jax import sharding
    from devias_jax.train import build_step
    from scripts.benchmark import forward_macs, random_batch

    config = smoke_config(method, **overrides)
    mesh = sharding.make_mesh(num_devices=1)
    parts = build_step(config, mesh, global_batch=2, total_steps=10, warmup_steps=0, random_teacher=True)
    state = parts.init_state(jax.random.key(0))
    before = jax.tree.map(np.asarray, state["params"])
    state, metrics = parts.train_step(state, sharding.to_global(random_batch(config, 2), mesh), parts.frozen)
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["grad_norm"]))
    assert float(metrics["grad_norm"]) > 0
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state["params"]))]
    assert all(moved)  # every parameter, slots and mask decoder included, gets an update
    assert forward_macs(config.model) > 0


@pytest.mark.slow
def test_benchmark_runs_without_tensorflow():
    code = ("import sys; sys.modules['tensorflow'] = None  # any import of TensorFlow now fails\n"
            "sys.path.insert(0, '.')\n"
            "from devias_jax.config_loading import load_config\n"
            "from scripts.benchmark import run\n"
            "r = run(load_config('configs/demo.py:method=devias,smoke'), batch_size=8, steps=1, warmup=1)\n"
            "assert r['clips_per_s'] > 0 and r['loss'] == r['loss'], r\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_vit_b_flop_count_matches_the_reference_figure():
    sys.path.insert(0, ROOT)
    from scripts.benchmark import forward_macs

    macs = forward_macs(load_config(os.path.join(ROOT, "configs/kinetics400.py:method=action_vit")).model)
    assert 179e9 < macs < 181.5e9  # REFERENCE: ViT-B 16x224 ~ 180 GMACs per clip


@pytest.mark.parametrize("key,value", [("model.slot_softmax_axis", "tokens"), ("loss.matching", "optimal"),
                                       ("loss.cos_mode", "one_minus"), ("loss.scene_target", "pseudo"),
                                       ("model.num_slots", 1), ("loss.teacher_kl_weight", -2.0),
                                       ("loss.label_smoothing", 1.5), ("model.fusion", "sum"),
                                       ("model.init_bounds", "timm")])
def test_bad_values_name_the_key(key, value):
    config = smoke_config("devias", **{key: value})
    with pytest.raises(config_validation.ConfigError, match=f"config.{key}"):
        config_validation.validate(config)


def test_class_count_has_one_name_and_teacher_follows_clip_geometry():
    config = load_config(os.path.join(ROOT, "configs/kinetics400.py:method=devias"))
    assert config.model.num_actions == 400 and "num_classes" not in config.model and "num_actions" not in config.data
    config.model.num_frames = 8
    assert config.loss.teacher.num_frames == 8 and config.loss.teacher.name == "scene_vit"
    assert config.loss.teacher.pooling == "cls" and config.loss.teacher.num_scenes == 365


TRUNCATED_STD = 0.87962566  # std of a standard normal truncated at +-2


def _is_head(name: str) -> bool:  # the classifier Linears, initialised x head_init_scale
    return name.split("/")[-2:-1] in (["head"], ["scene_head"])


@pytest.mark.parametrize("method,overrides", [("devias", {}), ("two_token", {}), ("one_token", {}),
                                              ("devias_downstream", {}),
                                              ("devias_downstream", {"model.fusion": "gap"})])
def test_init_bounds_reach_every_trunc_normal_parameter(method, overrides):
    ours, ours_rest = truncated_normal_leaves(build_model(smoke_config(method, **overrides).model, rngs=nnx.Rngs(0)))
    config = smoke_config(method, **overrides, **{"model.init_bounds": "absolute"})
    official, official_rest = truncated_normal_leaves(build_model(config.model, rngs=nnx.Rngs(0)))
    scale = config.model.head_init_scale
    assert set(ours) == set(official) and any(_is_head(name) for name in ours)
    if method == "devias":
        assert {name.split("/")[0] for name in ours} == {"blocks", "slot_attention", "mask_predictor", "head"}
    for name, value in ours.items():
        # 'std': no weight beyond 2 * 0.02 (times the head scale); 'absolute' reached every one of them
        assert np.abs(value).max() <= 2 * 0.02 * (scale if _is_head(name) else 1.0), name
        assert not np.array_equal(value, official[name]), name
    assert set(ours_rest) == set(official_rest)
    for name, value in ours_rest.items():  # one key per draw under either choice: the rest is bit-identical
        np.testing.assert_array_equal(value, official_rest[name], err_msg=name)
    # every non-head kernel pooled: N(0, 0.02^2) under 'absolute', the +-2 std truncation under 'std'
    for drawn, expected_std in ((official, 0.02), (ours, 0.02 * TRUNCATED_STD)):
        pooled = np.concatenate([v.ravel() for name, v in drawn.items() if not _is_head(name)]).astype(np.float64)
        tolerance = 5 * expected_std / np.sqrt(2 * pooled.size)  # 5 standard errors of a sample std
        assert abs(pooled.std() - expected_std) < tolerance, (pooled.std(), expected_std, tolerance, pooled.size)


def test_official_compat_switches_the_init_and_the_field_can_be_set_on_its_own():
    recipe = os.path.join(ROOT, "configs/ucf101.py:method=devias")
    config = load_config(recipe)
    assert config.model.init_bounds == "std" and not config.loss.official_compat
    config = load_config(recipe, {"loss.official_compat": True})
    assert config.model.init_bounds == "absolute"
    cfg = devias_config_from(config.model)
    assert cfg.vit.init_bounds == cfg.slots.init_bounds == "absolute"
    # set on its own, either way round, without moving the switch (or the switch moving it back)
    config = load_config(recipe, {"model.init_bounds": "absolute"})
    assert config.model.init_bounds == "absolute" and not config.loss.official_compat
    assert not config.optim.official_layer_ids
    for order in ({"model.init_bounds": "std", "loss.official_compat": True},
                  {"loss.official_compat": True, "model.init_bounds": "std"}):
        config = load_config(recipe, order)
        assert config.model.init_bounds == "std" and config.loss.official_compat
        config_validation.validate(config)
    config.loss.official_compat = False
    config.loss.official_compat = True
    assert config.model.init_bounds == "std"
    # a late switch (after the recipe is built) still carries the init with it
    config = load_config(recipe)
    config.loss.official_compat = True
    assert config.model.init_bounds == "absolute" and config.to_dict()["model"]["init_bounds"] == "absolute"
    assert config.optim.official_layer_ids and config.augment.official_fill
    # the other official fields follow the switch the same way and never write back into it
    for key in ("optim.official_layer_ids", "augment.official_fill"):
        config = load_config(recipe, {key: True})
        assert not config.loss.official_compat and config.model.init_bounds == "std", key
        config = load_config(recipe, {"loss.official_compat": True, key: False})
        assert config.loss.official_compat and config.model.init_bounds == "absolute", key
