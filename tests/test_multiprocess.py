"""Two processes joined by jax.distributed on localhost (CPU, gloo collectives) train like one."""

import os
import socket
import subprocess
import sys

from tests.conftest import ROOT
from tests.train_helpers import assert_params_equal, final_params

WORKER = os.path.join(ROOT, "tests", "multiprocess_worker.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _launch(workdir, process_id, num_processes, port, devices):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    return subprocess.Popen([sys.executable, WORKER, workdir, str(process_id), str(num_processes), str(port),
                             str(devices)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_two_processes_agree_with_one(tmp_path):
    single = str(tmp_path / "single")
    pair = str(tmp_path / "pair")
    port = _free_port()
    procs = [_launch(single, 0, 1, port, 8)] + [_launch(pair, i, 2, port, 4) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    # Same global batches (the stream is defined per global position), same mesh shape (4 x 2):
    # only the order of cross-process reductions may differ.
    assert_params_equal(final_params(single), final_params(pair), atol=2e-5)
