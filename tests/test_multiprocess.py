"""Two processes joined by jax.distributed on localhost (CPU, gloo collectives) train like one."""

import os
import socket
import subprocess
import sys

import pytest

from devias_jax import monitoring
from tests.conftest import ROOT
from tests.train_helpers import assert_params_equal, final_params

pytestmark = pytest.mark.slow  # several processes joined by jax.distributed train end to end

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


def _train_records(workdir):
    return [(r["step"], r["loss"], r["grad_norm"]) for r in monitoring.read_metrics(workdir) if r["split"] == "train"]


def test_two_processes_agree_with_one(tmp_path):
    """1 process with 2 devices vs 2 processes with 1 device each, the same mesh (data 1, fsdp 2): each
    process reads its half of every global batch, parameters and Adam moments are split across the
    processes, and every gradient, loss and norm is summed across them.

    Why the comparison is exact (no tolerance): both runs compile the same SPMD program for the same
    (1, 2) mesh, so each device does bit-identical work on bit-identical inputs; the runs differ only in
    who carries the cross-device collectives (in-process vs gloo). With two participants every summing
    collective adds exactly two partial values per element, and a + b == b + a in IEEE arithmetic, so
    the order the implementation picks cannot change a bit. (With more devices it can: a 4 x 2 mesh sums
    8 partials in an implementation-defined order, a float32 difference of a few ulps that Adam, whose
    update for a near-zero gradient is ~lr * sign(g), amplified to 1.5e-4 in a few steps.)
    Any difference - a process reading the wrong slice, a step skipped or repeated - changes the loss."""
    single = str(tmp_path / "single")
    pair = str(tmp_path / "pair")
    port = _free_port()
    procs = [_launch(single, 0, 1, port, 2)] + [_launch(pair, i, 2, port, 1) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    assert "ran with processes=1 devices=2 local_devices=2" in outputs[0], outputs[0][-3000:]
    for out in outputs[1:]:
        assert "ran with processes=2 devices=2 local_devices=1" in out, out[-3000:]
    # The same loss and gradient norm at every step (logged every step), bit for bit ...
    records = _train_records(single)
    assert [step for step, _, _ in records] == [1, 2, 3, 4, 5, 6]
    assert _train_records(pair) == records
    # ... and the same parameters, which training did change (step 3 -> step 6).
    final = final_params(single)
    assert_params_equal(final, final_params(pair))
    midway = final_params(os.path.join(single, "checkpoints", "3"))
    assert any((final[k] != midway[k]).any() for k in final)
