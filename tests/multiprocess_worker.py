"""One process of a multi-process CPU training run (launched by tests/test_multiprocess.py).

  python tests/multiprocess_worker.py WORKDIR PROCESS_ID NUM_PROCESSES PORT DEVICES_PER_PROCESS

Trains tiny_train_config('two_token') (6 steps, checkpoints at 3 and 6) on a mesh (data 1, fsdp 2),
logging every step; prints the process and device counts it ran with.
"""

import os
import sys

workdir, process_id, num_processes, port, local_devices = sys.argv[1:6]
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from devias_jax.train import train_and_evaluate  # noqa: E402
from tests.train_helpers import tiny_train_config  # noqa: E402

overrides = {"eval.suites": {}, "sharding.fsdp": 2, "sharding.fsdp_min_size": 1, "train.log_every_steps": 1}
if int(num_processes) > 1:
    overrides.update({"distributed.coordinator_address": f"localhost:{port}",
                      "distributed.num_processes": int(num_processes),
                      "distributed.process_id": int(process_id)})
train_and_evaluate(tiny_train_config("two_token", **overrides), workdir)
print(f"ran with processes={jax.process_count()} devices={jax.device_count()} "
      f"local_devices={jax.local_device_count()}", flush=True)
