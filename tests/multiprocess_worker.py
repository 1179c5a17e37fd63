"""One process of a multi-process CPU training run (launched by tests/test_multiprocess.py).

  python tests/multiprocess_worker.py WORKDIR PROCESS_ID NUM_PROCESSES PORT DEVICES_PER_PROCESS
"""

import os
import sys

workdir, process_id, num_processes, port, local_devices = sys.argv[1:6]
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devias_jax.train import train_and_evaluate  # noqa: E402
from tests.train_helpers import tiny_train_config  # noqa: E402

overrides = {"eval.suites": {}, "sharding.fsdp": 2, "sharding.fsdp_min_size": 1}
if int(num_processes) > 1:
    overrides.update({"distributed.coordinator_address": f"localhost:{port}",
                      "distributed.num_processes": int(num_processes),
                      "distributed.process_id": int(process_id)})
train_and_evaluate(tiny_train_config("two_token", **overrides), workdir)
