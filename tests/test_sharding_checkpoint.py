"""Mesh, shardings, global batches, orbax checkpoints and the preemption watch (8 fake CPU devices)."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs.defaults import checkpoint_config, sharding_config
from devias_jax import checkpoint, sharding, weights
from devias_jax.torch_reader import CheckpointError


def test_mesh_shapes_and_errors():
    assert jax.device_count() == 8
    mesh = sharding.make_mesh(fsdp=2)
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2}
    assert dict(sharding.make_mesh(fsdp=-1).shape) == {"data": 1, "fsdp": 8}
    with pytest.raises(ValueError, match="fsdp=3"):
        sharding.make_mesh(fsdp=3)


def test_fsdp_rules():
    assert sharding.fsdp_spec((768, 2304), 4, 1) == P(None, "fsdp")
    assert sharding.fsdp_spec((10, 7), 4, 1) == P()  # nothing divisible
    assert sharding.fsdp_spec((768,), 4, 10_000) == P()  # small: replicated
    mesh = sharding.make_mesh(fsdp=4)
    cfg = sharding_config()
    cfg.fsdp_min_size = 1
    cfg.param_rules = [(r"bias$", "replicated"), (r".", "fsdp")]
    params = {"dense": {"kernel": jnp.zeros((8, 12)), "bias": jnp.zeros((12,))}}
    shardings = sharding.param_shardings(params, mesh, cfg)
    assert shardings["dense"]["kernel"].spec == P(None, "fsdp")
    assert shardings["dense"]["bias"].spec == P()
    cfg.param_rules = [(r".", "sideways")]
    with pytest.raises(ValueError, match="sideways"):
        sharding.param_shardings(params, mesh, cfg)


def test_to_global_splits_the_batch_over_all_devices():
    mesh = sharding.make_mesh(fsdp=2)
    batch = {"clips": np.arange(16 * 3, dtype=np.float32).reshape(16, 3), "action": np.arange(16)}
    arrays = sharding.to_global(batch, mesh)
    assert arrays["clips"].shape == (16, 3)
    assert len(arrays["clips"].addressable_shards) == 8
    assert all(s.data.shape == (2, 3) for s in arrays["clips"].addressable_shards)
    np.testing.assert_array_equal(np.asarray(arrays["action"]), np.arange(16))
    assert sharding.local_batch_size(16, mesh) == 16
    with pytest.raises(ValueError, match="not divisible"):
        sharding.local_batch_size(12, mesh)


def _state(mesh, value=1.0):
    return {"params": {"w": jax.device_put(jnp.full((8, 4), value), sharding.param_shardings(
        {"w": jnp.zeros((8, 4))}, mesh, _fsdp_everything())["w"]), "b": jnp.full((4,), value)},
            "step": jnp.asarray(3, jnp.int32)}


def _fsdp_everything():
    cfg = sharding_config()
    cfg.fsdp_min_size = 1
    return cfg


def test_checkpoint_round_trip_retention_and_best(tmp_path):
    mesh = sharding.make_mesh(fsdp=4)
    cfg = checkpoint_config()
    cfg.keep, cfg.keep_best, cfg.async_save = 1, 1, True
    ckpts = checkpoint.Checkpoints(str(tmp_path / "ckpt"), cfg, best_metric="harmonic_mean")
    ckpts.save(10, _state(mesh, 1.0), {"step": 10}, metrics={"harmonic_mean": 50.0})
    ckpts.save(20, _state(mesh, 2.0), {"step": 20}, metrics={"harmonic_mean": 40.0})
    ckpts.save(30, _state(mesh, 3.0), {"step": 30})
    ckpts.wait()
    assert ckpts.latest_step() == 30 and ckpts.best_step() == 10
    assert ckpts.all_steps() == [10, 30]  # best and latest survive
    abstract = checkpoint.abstract_like(_state(mesh, 0.0))
    state, meta = ckpts.restore(30, abstract)
    assert meta == {"step": 30}
    np.testing.assert_array_equal(np.asarray(state["params"]["w"]), 3.0)
    assert state["params"]["w"].sharding == abstract["params"]["w"].sharding
    ckpts.close()
    # No temporary directories are left behind and a new manager sees the same steps.
    assert not [p for p in os.listdir(tmp_path / "ckpt") if "tmp" in p]
    again = checkpoint.Checkpoints(str(tmp_path / "ckpt"), cfg, best_metric="harmonic_mean")
    assert again.latest_step() == 30
    again.close()


def test_preemption_watch_turns_sigterm_into_a_stop_request():
    watch = checkpoint.PreemptionWatch(signals=(signal.SIGTERM,))
    try:
        assert not watch.should_stop(0)
        os.kill(os.getpid(), signal.SIGTERM)
        assert watch.should_stop(1)
    finally:
        watch.restore_handlers()


def test_weights_from_a_trainer_checkpoint_restore_only_the_parameters_onto_their_shardings(tmp_path):
    """The one weights path (devias_jax/weights.py) on a trainer checkpoint saved on a 2-way FSDP mesh:
    the parameters come back on the requested 4-way FSDP shardings, equal to what was saved, while the
    optimizer moments, the step and parameters nobody asked for are never restored; a parameter of
    another shape fails naming both shapes."""
    saved_mesh, target_mesh = sharding.make_mesh(fsdp=2), sharding.make_mesh(fsdp=4)
    state = _state(saved_mesh, 2.0)
    state["params"]["extra"] = jnp.ones((3,))
    state["opt_state"] = {"mu": jnp.zeros((8, 4)), "nu": jnp.zeros((8, 4))}
    cfg = checkpoint_config()
    cfg.async_save = False
    ckpts = checkpoint.Checkpoints(str(tmp_path / "run" / "checkpoints"), cfg)
    ckpts.save(5, state, {"step": 5})
    ckpts.close()
    template = {"w": jax.ShapeDtypeStruct((8, 4), jnp.float32), "b": jax.ShapeDtypeStruct((4,), jnp.float32)}
    targets = sharding.param_shardings(template, target_mesh, _fsdp_everything())
    read = []
    original = checkpoint.restore_stored_params

    def spy(state_dir, wanted):
        read.append(sorted(wanted))
        return original(state_dir, wanted)

    checkpoint.restore_stored_params = spy
    try:
        params, report = weights.restore_params(template, str(tmp_path / "run"), None, shardings=targets, strict=True)
    finally:
        checkpoint.restore_stored_params = original
    assert read == [["b", "w"]] and sorted(report.loaded) == ["b", "w"] and report.unused == ["extra"]
    assert params["w"].sharding == targets["w"] and params["w"].sharding.spec == P("fsdp", None)  # 8 rows over 4
    np.testing.assert_array_equal(np.asarray(params["w"]), np.full((8, 4), 2.0))
    np.testing.assert_array_equal(np.asarray(params["b"]), np.full((4,), 2.0))
    wrong = {"w": jax.ShapeDtypeStruct((4, 8), jnp.float32)}
    with pytest.raises(CheckpointError, match=r"\(8, 4\).*\(4, 8\)"):
        weights.restore_params(wrong, str(tmp_path / "run"), None, shardings={"w": targets["w"]})
