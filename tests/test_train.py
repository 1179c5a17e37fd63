"""The trainer end to end on generated videos: loss, checkpoints, report, sharding, resume, preemption."""

import json
import os
import signal

import numpy as np
import pytest

from devias_jax import monitoring, report as report_lib
from devias_jax.train import NonFiniteLossError, train_and_evaluate
from tests.train_helpers import assert_params_equal, final_params, tiny_train_config


@pytest.mark.slow
def test_end_to_end_devias_on_8_devices(tmp_path):
    config = tiny_train_config("devias", **{"sharding.fsdp": 2, "sharding.fsdp_min_size": 1,
                                             "train.num_steps": 12, "optim.base_lr": 0.05})
    workdir = str(tmp_path / "run")
    result = train_and_evaluate(config, workdir)
    train = [r for r in monitoring.read_metrics(workdir) if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert train[-1]["loss"] < train[0]["loss"]
    for key in ("loss_de", "loss_amd", "loss_ag", "loss_cos", "lr", "grad_norm", "clips_per_second"):
        assert key in train[-1]
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())[-1] == 12
    report = json.load(open(os.path.join(workdir, "eval", "report.json")))
    for key in report_lib.HEADLINE + ("harmonic_mean", "scene_seen_top1", "scene_unseen_top5", "suites"):
        assert key in report
    assert report["suites"]["val_seen"]["videos"] == 12 and report["suites"]["scene_only"]["videos"] == 8
    assert np.isnan(report["action_unseen"])  # no unseen suite scores actions here
    assert result["step"] == 12 and os.path.exists(os.path.join(workdir, "config.json"))
    # --mode=eval on the workdir scores the last checkpoint: the numbers of the end-of-training evaluation
    from devias_jax.evaluate import evaluate_checkpoint

    again = evaluate_checkpoint(config, workdir)
    for key in report_lib.HEADLINE + ("harmonic_mean", "scene_seen_top1"):
        np.testing.assert_allclose(again[key], report[key], atol=1e-6, err_msg=key)


@pytest.mark.slow
def test_sharded_and_single_device_training_agree(tmp_path):
    runs = {}
    for name, overrides in {"single": {"sharding.num_devices": 1},
                            "sharded": {"sharding.fsdp": 2, "sharding.fsdp_min_size": 1}}.items():
        config = tiny_train_config("devias", **overrides, **{"eval.suites": {}})
        train_and_evaluate(config, str(tmp_path / name))
        runs[name] = final_params(str(tmp_path / name))
    assert_params_equal(runs["single"], runs["sharded"], atol=2e-5)


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_kill_between_checkpoints_then_resume_is_bitwise_identical(tmp_path):
    reference = tiny_train_config("two_token", **{"eval.suites": {}})
    train_and_evaluate(reference, str(tmp_path / "reference"))

    def crash_at_5(step, metrics):
        if step == 5:  # checkpoints at 3 and 6: dies after step 5, losing steps 4-5
            raise _Crash()

    workdir = str(tmp_path / "resumed")
    with pytest.raises(_Crash):
        train_and_evaluate(tiny_train_config("two_token", **{"eval.suites": {}}), workdir, step_hook=crash_at_5)
    assert sorted(s for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit()) == ["3"]
    train_and_evaluate(tiny_train_config("two_token", **{"eval.suites": {}}), workdir)
    assert_params_equal(final_params(str(tmp_path / "reference")), final_params(workdir))


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly_then_resumes_identically(tmp_path):
    reference = str(tmp_path / "reference")
    train_and_evaluate(tiny_train_config("two_token", **{"eval.suites": {}}), reference)

    def preempt_at_4(step, metrics):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    workdir = str(tmp_path / "preempted")
    result = train_and_evaluate(tiny_train_config("two_token", **{"eval.suites": {}}), workdir,
                                step_hook=preempt_at_4)
    assert result["stopped_at"] == 4
    assert "4" in os.listdir(os.path.join(workdir, "checkpoints"))
    train_and_evaluate(tiny_train_config("two_token", **{"eval.suites": {}}), workdir)
    assert_params_equal(final_params(reference), final_params(workdir))


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_train_config("two_token", **{"eval.suites": {}, "optim.base_lr": 1e30, "optim.warmup_steps": 0})
    workdir = str(tmp_path / "diverged")
    with pytest.raises(NonFiniteLossError, match=r"at step \d+"):
        train_and_evaluate(config, workdir)
    steps = [s for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit()]
    for step in steps:  # whatever was kept was reached through finite losses only
        params = final_params(os.path.join(workdir, "checkpoints", step))
        assert all(np.isfinite(v).all() for v in params.values())


@pytest.mark.slow
def test_broken_videos_are_reported_in_console_metrics_report_and_list(tmp_path, capsys):
    from configs import common
    from devias_jax.data import sources, streams
    from tests.data_helpers import tiny_dataset, write_bad_files

    root = tiny_dataset()
    bad = write_bad_files(str(tmp_path / "bad"))
    with open(tmp_path / "broken.txt", "w") as handle:
        handle.writelines(open(os.path.join(root, "train.txt")).readlines())  # 24 good clips
        handle.writelines(f"{path} 1 1\n" for path in bad.values())         # then 5 bad files
    config = tiny_train_config("two_token", **{
        "data.train_list": str(tmp_path / "broken.txt"), "data.max_failure_fraction": 0.5,
        "eval.suites": {"broken": common.suite(str(tmp_path / "broken.txt"), "action,scene", "seen")}})
    # What the run must report: the positions of its 6 x 8 clips whose list row is a bad file.
    order = streams.train_batches(config, global_batch_size=8, process_index=0, process_count=1, seed=config.seed)
    rows = np.asarray([order.row(position) for position in range(6 * 8)])
    expected = int((rows >= 24).sum())
    assert expected > 0
    workdir = str(tmp_path / "run")
    result = train_and_evaluate(config, workdir)
    console = capsys.readouterr().out
    assert "substituted" in console and f"{expected} training clip(s) replaced" in console
    windows = [r for r in monitoring.read_metrics(workdir) if r["split"] == "data"]
    assert [r["step"] for r in windows] == [2, 4, 6]
    assert sum(r["substituted_clips"] for r in windows) == windows[-1]["substituted_clips_total"] == expected
    for window, start in zip(windows, (0, 16, 32)):
        assert window["substituted_clips"] == int((rows[start:start + 16] >= 24).sum())
    report = json.load(open(os.path.join(workdir, "eval", "report.json")))
    assert report["training_data"]["substituted_clips"] == expected == result["training_data"]["substituted_clips"]
    listed = open(os.path.join(workdir, "bad_videos.txt")).read().splitlines()
    reasons = dict(line.split("\t", 1) for line in listed[1:])
    seen_bad = {sources.get(config).name(int(r)) for r in rows[rows >= 24]}
    assert set(reasons) >= seen_bad and set(reasons) <= set(bad.values())
    assert report["training_data"]["files_bad"] == len(reasons)
    assert all(reason.strip() for reason in reasons.values())
    # evaluation leaves every bad file out of the suite's scores and lists all five
    assert report["suites"]["broken"]["videos"] == 24 and report["suites"]["broken"]["videos_unreadable"] == 5
    evaluated = open(os.path.join(workdir, "eval", "bad_videos.txt")).read().splitlines()[1:]
    assert {line.split("\t")[0] for line in evaluated} == set(bad.values())
    assert "broken: 5 video(s) could not be decoded" in console
