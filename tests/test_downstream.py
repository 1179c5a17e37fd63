"""Downstream transfer (configs/downstream.py): dataset presets, and fine-tuning from a DEVIAS trainer
workdir with the concat and GAP heads end to end on the synthetic dataset."""

import json
import os

import numpy as np
import pytest

from configs import common
from devias_jax import config_validation
from devias_jax.config_loading import load_config
from devias_jax.train import train_and_evaluate
from tests.conftest import ROOT
from tests.data_helpers import TINY, tiny_dataset
from tests.teacher_helpers import devias_with_online_teacher
from tests.train_helpers import final_params


@pytest.mark.parametrize("dataset,classes,flip", [("diving48", 48, True), ("ssv2", 88, False),
                                                  ("ucf101", 101, True), ("activitynet", 200, True)])
@pytest.mark.parametrize("fusion", ["concat", "gap"])
def test_presets_follow_table_23(dataset, classes, flip, fusion):
    config = load_config(os.path.join(ROOT, f"configs/downstream.py:dataset={dataset},fusion={fusion}"))
    config_validation.validate(config)
    assert config.model.name == "devias_downstream" and config.model.fusion == fusion
    assert config.model.num_actions == classes
    assert config.augment.flip is flip and config.data.scene_source == "none"
    assert (config.optim.base_lr, config.optim.weight_decay, config.optim.layer_decay) == (5e-4, 0.05, 0.75)
    assert (config.optim.warmup_epochs, config.train.num_epochs, config.train.batch_size) == (5, 50, 96)
    assert config.model.drop_path_rate == 0.1 and config.loss.label_smoothing == 0.1
    assert config.augment.mixup_alpha == config.augment.cutmix_alpha == config.augment.random_erase_prob == 0
    assert config.augment.scene_mix_prob == 0 and list(config.eval.suites) == [dataset]


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="dataset='kinetics'"):
        load_config(os.path.join(ROOT, "configs/downstream.py:dataset=kinetics"))
    with pytest.raises(ValueError, match="fusion='sum'"):
        load_config(os.path.join(ROOT, "configs/downstream.py:fusion=sum"))


@pytest.fixture(scope="module")
def devias_workdir():
    """A tiny DEVIAS (configs/demo.py:smoke geometry) trained 4 steps (with the online scene teacher)."""
    return devias_with_online_teacher().workdir


def _downstream_config(fusion: str, init_from: str, **overrides):
    config = load_config(os.path.join(ROOT, f"configs/downstream.py:smoke,dataset=ucf101,fusion={fusion}"))
    config.model.num_actions = TINY.num_actions
    config.data.update(root=tiny_dataset(), decode_workers=2, prefetch_batches=1, test_temporal_views=1,
                       test_spatial_views=1)
    config.eval.suites = {"val_seen": common.suite("val_seen.txt", "action", "seen")}
    config.eval.batch_size = 8
    config.train.update(batch_size=8, num_epochs=-1, num_steps=3, log_every_steps=1, checkpoint_every_steps=-1,
                        checkpoint_every_epochs=-1, eval_every_steps=-1, eval_every_epochs=-1, plot_curves=False)
    config.optim.update(warmup_steps=1, warmup_epochs=-1)
    config.checkpoint.async_save = False
    config.augment.mix_groups = 2
    config.init_from = init_from
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        setattr(node, leaf, value)
    config_validation.validate(config)
    return config


@pytest.mark.slow
def test_concat_fine_tune_loads_backbone_and_slots_and_starts_a_new_head(devias_workdir, tmp_path, capsys):
    # lr ~ 0: after training, the parameters are still what the run started from
    config = _downstream_config("concat", devias_workdir, **{"optim.base_lr": 1e-12, "train.num_steps": 2})
    workdir = str(tmp_path / "concat")
    result = train_and_evaluate(config, workdir)
    assert result["step"] == 2 and np.isfinite(result["loss"])
    report = json.load(open(os.path.join(workdir, "eval", "report.json")))
    assert report["suites"]["val_seen"]["videos"] == 12 and np.isfinite(report["action_seen"])
    printed = capsys.readouterr().out
    assert f"init_from {devias_workdir}" in printed and "missing" in printed and "fusion_head/" in printed

    source, tuned = final_params(devias_workdir), final_params(workdir)
    new = sorted(k for k in tuned if k.startswith("fusion_head/"))
    loaded = sorted(k for k in tuned if not k.startswith("fusion_head/"))
    assert any(k.startswith("blocks/") for k in loaded) and any(k.startswith("slot_attention/") for k in loaded)
    assert "patch_embed/proj/kernel" in loaded
    for key in loaded:  # backbone and slots come from the DEVIAS run
        np.testing.assert_allclose(tuned[key], source[key], rtol=0, atol=1e-6, err_msg=key)
    assert not set(new) & set(source)  # DEVIAS's unified head / mask decoder are not carried over
    assert not any(k.startswith(("head/", "mask_predictor/")) for k in tuned)
    # the fusion head is freshly initialised: trunc-normal(0.02) projections, x0.001 classifier, unit LayerNorms
    assert 0.014 < tuned["fusion_head/action_proj/kernel"].std() < 0.026
    assert 0.014 < tuned["fusion_head/scene_proj/kernel"].std() < 0.026
    assert 1.4e-5 < tuned["fusion_head/head/kernel"].std() < 2.6e-5
    assert tuned["fusion_head/head/kernel"].shape == (32, TINY.num_actions)
    for key in ("action_norm", "scene_norm", "fusion_norm"):
        np.testing.assert_allclose(tuned[f"fusion_head/{key}/scale"], 1.0, atol=1e-6)


@pytest.mark.slow
def test_gap_fine_tune_trains(devias_workdir, tmp_path, capsys):
    config = _downstream_config("gap", devias_workdir, **{"optim.base_lr": 0.05, "eval.suites": {}})
    workdir = str(tmp_path / "gap")
    result = train_and_evaluate(config, workdir)
    printed = capsys.readouterr().out
    assert "missing (4): fusion_head/fc_norm/bias" in printed  # a new GAP head; DEVIAS slots unused
    train = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))
             if json.loads(line)["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in train)
    assert "loss_action" in train[-1] and "action_acc" in train[-1]
    assert result["step"] == 3 and train[-1]["loss"] != train[0]["loss"]
    tuned = final_params(workdir)
    assert not any(k.startswith("slot_attention/") for k in tuned) and "fusion_head/fc_norm/scale" in tuned


# ----------------------------------------------------------------------------------------------------
# The authors' downstream head (model.fusion_variant=official, set by loss.official_compat)
# ----------------------------------------------------------------------------------------------------


def test_official_switch_sets_the_authors_head_per_dataset():
    for dataset in ("diving48", "ssv2", "ucf101", "activitynet"):
        config = load_config(os.path.join(ROOT, f"configs/downstream.py:dataset={dataset}"))
        assert config.model.fusion_variant == "default" and config.model.fusion_norm is True
        config.loss.official_compat = True
        config_validation.validate(config)
        authors = dataset in ("ucf101", "activitynet")  # their commands add --use_input_ln, fc drop 0.5
        assert config.model.fusion_variant == "official" and config.model.fusion_norm is authors
        assert (config.model.head_dropout, config.model.drop_path_rate) == ((0.5, 0.2) if authors else (0.0, 0.1))
        assert config.optim.min_lr == (1e-5 if authors else 1e-6)


def _torch_official_head(params, slots, num_source_actions, input_norm):
    """The authors' downstream forward after the slot encoder, transcribed from their model with torch.nn.functional:
    slot probabilities over the whole unified vector pick the action slot (max action probability) and the
    scene slot (max scene probability) per clip; each picked slot gets its own LayerNorm (eps 1e-6); both go
    through the *action* Linear D -> D/2 and LayerNorm (eps 1e-5); concatenation, optional LayerNorm (1e-5),
    ReLU, Linear."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.tensor(np.asarray(v), dtype=torch.float64) for k, v in params.items()}
    x = torch.tensor(np.asarray(slots), dtype=torch.float64)  # (B, K, D)
    probs = F.softmax(x @ t["head/kernel"] + t["head/bias"], dim=-1)
    action_index = probs[..., :num_source_actions].max(-1).values.argmax(1)
    scene_index = probs[..., num_source_actions:].max(-1).values.argmax(1)
    rows = torch.arange(x.shape[0])

    def norm(v, name, eps):
        return F.layer_norm(v, v.shape[-1:], t[f"{name}/scale"], t[f"{name}/bias"], eps)

    head = "fusion_head"
    action = norm(x[rows, action_index], f"{head}/action_slot_norm", 1e-6)
    scene = norm(x[rows, scene_index], f"{head}/scene_slot_norm", 1e-6)

    def down(v):  # their scene path calls the action layers
        return norm(v @ t[f"{head}/action_proj/kernel"] + t[f"{head}/action_proj/bias"], f"{head}/action_norm", 1e-5)

    fused = torch.cat([down(action), down(scene)], dim=1)
    if input_norm:
        fused = norm(fused, f"{head}/fusion_norm", 1e-5)
    logits = F.relu(fused) @ t[f"{head}/head/kernel"] + t[f"{head}/head/bias"]
    return logits.numpy(), action_index.numpy(), scene_index.numpy()


@pytest.mark.slow
@pytest.mark.parametrize("input_norm", [True, False])
def test_official_head_matches_a_torch_transcription(input_norm):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from devias_jax.methods import build_model
    from devias_jax.models.devias import take_slot
    from devias_jax.param_rules import flat_values

    config = load_config(os.path.join(ROOT, "configs/downstream.py:smoke,dataset=ucf101"))
    config.loss.official_compat = True
    config.model.update(num_actions=7, num_scenes=5, source_num_actions=6, fusion_norm=input_norm, num_slots=3)
    model = build_model(config.model, rngs=nnx.Rngs(0))
    assert model.fusion_head.scene_proj is None and model.fusion_head.scene_norm is None
    # every parameter random (LayerNorm scales and biases included) so a swapped or skipped one shows
    state = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    nnx.update(model, jax.tree_util.tree_unflatten(
        treedef, [jax.random.normal(k, leaf.shape, leaf.dtype) * 0.5 for k, leaf in zip(keys, leaves)]))
    params = {k: v for k, v in flat_values(nnx.state(model, nnx.Param).to_pure_dict()).items()
              if k.startswith(("head/", "fusion_head/"))}

    slots = jax.random.normal(jax.random.key(2), (64, 3, 32), jnp.float32)
    action_slot, scene_slot = model.choose_slots(slots)
    logits, _ = model.fusion_head(take_slot(slots, action_slot), take_slot(slots, scene_slot))
    expected, action_index, scene_index = _torch_official_head(params, slots, 6, input_norm)
    np.testing.assert_array_equal(np.asarray(action_slot), action_index)
    np.testing.assert_array_equal(np.asarray(scene_slot), scene_index)
    # the choice is per clip: every slot is picked somewhere and the roles disagree somewhere
    assert set(action_index.tolist()) == {0, 1, 2} and (action_index != scene_index).any()
    # float32 against float64, logits of order 10: a few float32 roundings through 4 small layers
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_official_fine_tune_loads_the_source_head_and_never_changes_it(devias_workdir, tmp_path, capsys):
    source = final_params(devias_workdir)
    source_actions = TINY.num_actions
    config = _downstream_config("concat", devias_workdir, **{
        "loss.official_compat": True, "optim.base_lr": 0.05, "model.source_num_actions": source_actions,
        "model.num_scenes": source["head/kernel"].shape[1] - source_actions})
    workdir = str(tmp_path / "official")
    result = train_and_evaluate(config, workdir)
    assert result["step"] == 3 and np.isfinite(result["loss"])
    tuned = final_params(workdir)
    # the unified head came from the source and stayed bit-identical (gradient stopped, no weight decay)...
    for key in ("head/kernel", "head/bias"):
        np.testing.assert_array_equal(tuned[key], source[key], err_msg=key)
    # ...while the rest trained, and the official head has no scene projection of its own
    assert not np.array_equal(tuned["slot_attention/latents"], source["slot_attention/latents"])
    assert "fusion_head/action_slot_norm/scale" in tuned and "fusion_head/scene_proj/kernel" not in tuned
    assert "fusion_head/fusion_norm/scale" in tuned  # ucf101: the authors' input LayerNorm

    # a source head of another shape (wrong source_num_actions) is refused, naming the field
    config = _downstream_config("concat", devias_workdir, **{
        "loss.official_compat": True, "model.source_num_actions": source_actions + 1,
        "model.num_scenes": source["head/kernel"].shape[1] - source_actions})
    with pytest.raises(Exception, match="source_num_actions"):
        train_and_evaluate(config, str(tmp_path / "wrong_head"))
    # and without a source there is nothing to pick slots with
    config = _downstream_config("concat", "", **{"loss.official_compat": True})
    with pytest.raises(config_validation.ConfigError, match="init_from"):
        train_and_evaluate(config, str(tmp_path / "no_source"))
