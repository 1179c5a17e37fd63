"""The authors' checkpoint layouts: DEVIAS (tied slot copies, unused conv keys), Two-Token, One-Token and
the Places365 scene teacher load through the converter; DEVIAS matches an independent PyTorch oracle."""

import collections

import numpy as np
import pytest
import torch

from devias_jax import load_model, torch_reader
from devias_jax.methods import build_model, torch_key_fn
from devias_jax.weights import flat_params
from tests.devias_oracles import DEVIASOracle, randomize
from tests.helpers import random_clips, tiny_vit_config
from tests.torch_oracles import hf_model, to_videomae_names

NUM_ACTIONS, NUM_SCENES = 5, 3


def devias_config(iterations: int = 3, tied: bool = True, softmax_axis: str = "slots"):
    model = tiny_vit_config("none")
    model.update(name="devias", num_actions=NUM_ACTIONS, num_scenes=NUM_SCENES, num_slots=2,
                 slot_iterations=iterations, slot_heads=2, slot_head_dim=16, slot_tied=tied,
                 slot_softmax_axis=softmax_axis, mask_decoder_dims=(24, 16))
    return model


def official_devias_file(tmp_path, tied: bool, softmax_over_slots: bool, iterations: int = 3, seed: int = 0):
    """A DEVIAS .pth in the authors' layout (DeepSpeed 'module', unused conv keys) and its torch oracle."""
    backbone = hf_model(use_mean_pooling=False, seed=seed)
    torch.manual_seed(seed + 1)
    oracle = DEVIASOracle(backbone, 64, NUM_ACTIONS + NUM_SCENES, 4, num_slots=2, iterations=iterations,
                          heads=2, head_dim=16, tied=tied, softmax_over_slots=softmax_over_slots)
    randomize(oracle.agg_block, seed)
    randomize(oracle.head, seed + 2)
    state = oracle.official_state_dict(to_videomae_names(backbone.state_dict()))
    state["mask_predictor.conv1.weight"] = torch.randn(8, 64, 3, 3)  # older checkpoints carry these; unused
    state["mask_predictor.conv1.bias"] = torch.randn(8)
    path = str(tmp_path / "devias_official.pth")
    torch.save({"module": state, "epoch": 99}, path)
    return path, oracle, state


@pytest.mark.parametrize("tied,softmax_axis", [(True, "slots"), (False, "keys")])
def test_official_devias_checkpoint_matches_torch_oracle(tmp_path, tied, softmax_axis):
    path, oracle, state = official_devias_file(tmp_path, tied, softmax_axis == "slots")
    predictor = load_model(devias_config(tied=tied, softmax_axis=softmax_axis), path)
    report = predictor.report
    assert not report.missing and not report.unused
    assert {"mask_predictor.conv1.weight", "mask_predictor.conv1.bias"} <= set(report.dropped)
    copies = {k for k in report.dropped if k.startswith("agg_block.layers.")}
    if tied:  # layers 1 and 2 repeat layer 0: verified equal and not loaded
        assert copies == {k for k in state if k.startswith(("agg_block.layers.1.", "agg_block.layers.2."))}
    else:
        assert not copies
    clips = random_clips(seed=11)
    reference = oracle.outputs(clips)
    out = predictor(clips)
    for key in ("tokens", "slots", "attention", "logits", "action_mask"):
        np.testing.assert_allclose(np.asarray(out[key]), reference[key], rtol=0, atol=2e-5, err_msg=key)
    axis = 1 if softmax_axis == "slots" else 2
    np.testing.assert_allclose(np.asarray(out["attention"]).sum(axis=axis), 1.0, atol=1e-5)
    # Inference selection on the oracle's logits (independent argmax of max action / scene probability).
    probs = torch.softmax(torch.from_numpy(reference["logits"]), -1).numpy()
    action_slot = probs[..., :NUM_ACTIONS].max(-1).argmax(1)
    scene_slot = probs[..., NUM_ACTIONS:].max(-1).argmax(1)
    np.testing.assert_array_equal(np.asarray(out["action_slot"]), action_slot)
    np.testing.assert_array_equal(np.asarray(out["scene_slot"]), scene_slot)
    rows = np.arange(len(clips))
    np.testing.assert_allclose(np.asarray(out["action_logits"]), reference["logits"][rows, action_slot, :NUM_ACTIONS],
                               atol=2e-5)
    np.testing.assert_allclose(np.asarray(out["scene_logits"]), reference["logits"][rows, scene_slot, NUM_ACTIONS:],
                               atol=2e-5)


def test_tied_copies_that_differ_and_wrong_iteration_counts_are_refused(tmp_path):
    path, _, _ = official_devias_file(tmp_path, tied=False, softmax_over_slots=True)
    with pytest.raises(torch_reader.CheckpointError, match="slot_tied=False"):
        load_model(devias_config(tied=True), path)
    with pytest.raises(torch_reader.CheckpointError, match=r"slot_iterations=4; set it to 3"):
        load_model(devias_config(iterations=4, tied=False), path)


def _export_official(model, model_config) -> "collections.OrderedDict[str, torch.Tensor]":
    """Our parameters under the authors' PyTorch names and layouts (Linear (out, in), Conv3d (D, C, t, y, x))."""
    to_torch = torch_key_fn(model_config)
    state = collections.OrderedDict()
    for path, value in flat_params(model).items():
        if path.endswith("kernel") and value.ndim == 2:
            value = value.T
        elif path.endswith("kernel") and value.ndim == 5:
            value = np.transpose(value, (4, 3, 0, 1, 2))
        state[to_torch(path)] = torch.from_numpy(np.array(value, copy=True))
    return state


def _round_trip(tmp_path, model_config, container="module", repeat_slot_layers=0):
    from flax import nnx

    original = build_model(model_config, rngs=nnx.Rngs(3))
    state = _export_official(original, model_config)
    for index in range(1, repeat_slot_layers):  # tied: the official file repeats layer 0 under every index
        for key in [k for k in state if k.startswith("agg_block.layers.0.")]:
            state[key.replace("agg_block.layers.0.", f"agg_block.layers.{index}.", 1)] = state[key].clone()
    path = str(tmp_path / "exported.pth")
    torch.save({container: state}, path)
    predictor = load_model(model_config, path)
    assert not predictor.report.missing and not predictor.report.unused
    clips = random_clips(seed=5)
    expected = original(clips, train=False)
    out = predictor(clips)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(out[key]), np.asarray(value), rtol=0, atol=1e-6, err_msg=key)
    return predictor, state


def test_synthetic_devias_state_dict_round_trips(tmp_path):
    predictor, state = _round_trip(tmp_path, devias_config(iterations=3), repeat_slot_layers=3)
    assert "agg_block.layers.2.0.fn.to_q.weight" in state and "agg_block.latents" in state
    assert "mask_predictor.decoder.4.weight" in state and "agg_block.last_layer.0.weight" in state
    assert "agg_block.layers.2.2.fn.net.3.weight" in predictor.report.dropped


@pytest.mark.parametrize("method", ["two_token", "two_token_unified", "one_token"])
def test_baseline_layouts_round_trip(tmp_path, method):
    model_config = tiny_vit_config("none" if method.startswith("two") else "mean")
    model_config.update(name=method.replace("_unified", ""), unified_head=method.endswith("unified"),
                        num_actions=NUM_ACTIONS, num_scenes=NUM_SCENES)
    _, state = _round_trip(tmp_path, model_config)
    if method.startswith("two"):
        assert state["cls_token"].shape == (1, 1, 64) and state["scene_token"].shape == (1, 1, 64)
        assert "norm.weight" in state
    else:
        assert "fc_norm.weight" in state
    if method.endswith("unified"):
        assert state["head.weight"].shape == (NUM_ACTIONS + NUM_SCENES, 64) and "scene_head.weight" not in state
    else:
        assert state["head.weight"].shape == (NUM_ACTIONS, 64) and state["scene_head.weight"].shape == (NUM_SCENES, 64)


def test_places365_teacher_layout_round_trips(tmp_path):
    """The scene teacher: a class-token ViT (final norm, x[:, 0]) with a 365-way head, weights at top level."""
    model_config = tiny_vit_config("cls")
    model_config.update(name="scene_vit", num_prefix_tokens=1, num_scenes=365)
    predictor, state = _round_trip(tmp_path, model_config, container="model")
    assert state["head.weight"].shape == (365, 64) and "cls_token" in state
    assert predictor(random_clips())["scene_logits"].shape == (2, 365)


def test_converted_directory_and_downstream_model(tmp_path):
    from scripts.convert_checkpoint import convert_file

    path, oracle, _ = official_devias_file(tmp_path, tied=True, softmax_over_slots=True)
    out_dir = str(tmp_path / "converted")
    report = convert_file(devias_config(), path, out_dir)
    assert not report.missing
    clips = random_clips(seed=2)
    np.testing.assert_allclose(np.asarray(load_model(devias_config(), out_dir)(clips)["logits"]),
                               oracle.outputs(clips)["logits"], atol=2e-5)
    # Transfer: the downstream model takes the backbone and the slots, its fusion head starts fresh.
    downstream = devias_config()
    downstream.update(name="devias_downstream", num_actions=7, fusion="concat")
    predictor = load_model(downstream, path, strict=False)
    assert predictor.report.missing and all(p.startswith("fusion_head/") for p in predictor.report.missing)
    assert {k.split(".")[0] for k in predictor.report.unused} == {"head", "mask_predictor"}
    out = predictor(clips)
    np.testing.assert_allclose(np.asarray(out["slots"]), oracle.outputs(clips)["slots"], atol=2e-5)
    assert out["action_logits"].shape == (2, 7)
