"""Device mesh, parameter / batch shardings, host-local -> global arrays, multi-host start-up.

One mesh with axes ("data", "fsdp"). The batch is split over both axes; parameters are replicated,
or, by rule, split over "fsdp" along their largest divisible dimension (ZeRO-3 style; XLA inserts the
all-gathers). Axis types are given explicitly as Auto so that GSPMD propagates those gathers through
the model code. Everything is jax.jit over this mesh; no per-device mapping APIs.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from absl import logging
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from devias_jax.param_rules import apply_rules

BATCH_AXES = ("data", "fsdp")

# Environment variables that mean "this process is one of several" on common launchers.
_CLUSTER_SIZE_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


_TPU_VARS = ("TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID", "CLOUD_TPU_TASK_ID", "TPU_ACCELERATOR_TYPE",
             "MEGASCALE_COORDINATOR_ADDRESS")


def _cluster_process_count() -> int:
    """The process count a launcher JAX can read announces (SLURM, Open MPI); 1 when none does."""
    for name in _CLUSTER_SIZE_VARS:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def _on_cloud_tpu() -> bool:
    """A Cloud TPU VM (JAX detects the pod slice's topology itself; harmless on a single host)."""
    return any(os.environ.get(name) for name in _TPU_VARS)


def initialize_distributed(dist_config: Any) -> None:
    """Calls jax.distributed.initialize() when more than one process is configured.

    Explicit coordinator / process count / process id (config.distributed.*) win; otherwise a TPU pod
    slice or a SLURM / Open MPI launch is detected and JAX reads the cluster from the environment.
    """
    explicit = dist_config.num_processes > 1 or bool(dist_config.coordinator_address)
    if not explicit and not (dist_config.auto and (_cluster_process_count() > 1 or _on_cloud_tpu())):
        return
    # CPU processes exchange collectives through gloo; GPUs and TPUs ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if explicit:
        if not dist_config.coordinator_address or dist_config.num_processes < 1 or dist_config.process_id < 0:
            raise ValueError("multi-process run needs config.distributed.coordinator_address (host:port), "
                             "config.distributed.num_processes and config.distributed.process_id")
        local_ids = None
        if dist_config.local_device_ids:
            local_ids = [int(i) for i in str(dist_config.local_device_ids).split(",")]
        jax.distributed.initialize(coordinator_address=dist_config.coordinator_address,
                                   num_processes=dist_config.num_processes,
                                   process_id=dist_config.process_id,
                                   local_device_ids=local_ids)
    else:
        jax.distributed.initialize()
    logging.info("jax.distributed: process %d of %d, %d local / %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())


def make_mesh(fsdp: int = 1, devices: Sequence[jax.Device] | None = None, num_devices: int = 0) -> Mesh:
    """Mesh (data, fsdp) over all devices (or the first `num_devices`, single-process only); fsdp = -1
    puts every device on the fsdp axis."""
    devices = list(devices if devices is not None else jax.devices())
    if num_devices:
        if jax.process_count() > 1 and num_devices != len(devices):
            raise ValueError("config.sharding.num_devices must be 0 (all) in a multi-process run")
        if num_devices > len(devices):
            raise ValueError(f"config.sharding.num_devices={num_devices} but only {len(devices)} devices exist")
        devices = devices[:num_devices]
    count = len(devices)
    fsdp = count if fsdp == -1 else fsdp
    if fsdp < 1 or count % fsdp:
        raise ValueError(f"config.sharding.fsdp={fsdp} must divide the device count {count} (or be -1)")
    return jax.make_mesh((count // fsdp, fsdp), BATCH_AXES, axis_types=(AxisType.Auto, AxisType.Auto),
                         devices=devices)


def run_mesh(config: Any) -> Mesh:
    """The mesh of a run (training, evaluation, analysis): multi-process start-up from
    config.distributed (a no-op for one process), then make_mesh from config.sharding."""
    initialize_distributed(config.distributed)
    return make_mesh(config.sharding.fsdp, num_devices=config.sharding.num_devices)


def batch_sharding(mesh: Mesh, ndim: int = 1) -> NamedSharding:
    """Leading (batch) dimension split over data x fsdp; the rest replicated."""
    return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def fsdp_spec(shape: Sequence[int], fsdp_size: int, min_size: int) -> P:
    """Split the largest dimension divisible by the fsdp axis size; small tensors stay replicated."""
    if fsdp_size <= 1 or int(np.prod(shape)) < min_size:
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % fsdp_size == 0:
            spec = [None] * len(shape)
            spec[dim] = "fsdp"
            return P(*spec)
    return P()


def param_shardings(params: Any, mesh: Mesh, sharding_config: Any) -> Any:
    """NamedSharding per parameter from rules: (regex, 'replicated' | 'fsdp'); first match wins.

    The default rule list is [(r'.', 'fsdp')] when config.sharding.fsdp > 1, else replicated.
    """
    fsdp_size = mesh.shape["fsdp"]
    rules = list(sharding_config.param_rules) or [(r".", "fsdp" if fsdp_size > 1 else "replicated")]
    for pattern, kind in rules:
        re.compile(pattern)
        if kind not in ("replicated", "fsdp"):
            raise ValueError(f"config.sharding.param_rules: rule {pattern!r} -> {kind!r}; expected "
                             "'replicated' or 'fsdp'")

    def spec_for(kind):
        def make(path, match, leaf):
            if kind == "replicated":
                return NamedSharding(mesh, P())
            return NamedSharding(mesh, fsdp_spec(leaf.shape, fsdp_size, sharding_config.fsdp_min_size))
        return make

    return apply_rules(params, [(pattern, spec_for(kind)) for pattern, kind in rules], "sharding")


def to_global(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Per-process numpy batch -> global jax.Arrays split over the batch axes of the mesh."""
    out = {}
    for name, local in batch.items():
        local = np.asarray(local)
        out[name] = jax.make_array_from_process_local_data(batch_sharding(mesh, local.ndim), local)
    return out


def sum_over_processes(values: Sequence[int]) -> np.ndarray:
    """Host integers (counts) summed over every process; a collective, so every process must call it."""
    local = np.asarray(values, np.int32)
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils  # only multi-process runs need it

    return np.asarray(multihost_utils.process_allgather(local)).reshape((-1,) + local.shape).sum(axis=0)


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Clips each process feeds; the global batch must split evenly over devices and processes."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(f"global batch size {global_batch_size} is not divisible by the {devices} devices "
                         "of the mesh; change config.train.batch_size")
    return global_batch_size // jax.process_count()
