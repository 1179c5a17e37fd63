"""Evaluation summary maths: top-k, harmonic mean, seen/unseen means, the printed table."""

import json

import numpy as np
import pytest

from devias_jax import report


def test_topk_accuracy_by_hand():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    labels = np.array([1, 1, 0, -1])  # last row unknown -> skipped
    assert report.topk_accuracy(probs, labels, 1) == pytest.approx(100 / 3)
    assert report.topk_accuracy(probs, labels, 2) == pytest.approx(200 / 3)
    assert report.topk_accuracy(probs, labels, 5) == pytest.approx(100.0)  # k capped at C


def test_harmonic_mean():
    assert report.harmonic_mean([90.1, 39.3, 74.0, 63.4]) == pytest.approx(4 / (1 / 90.1 + 1 / 39.3 + 1 / 74.0 + 1 / 63.4))
    assert report.harmonic_mean([50.0, 0.0, 50.0, 50.0]) == 0.0


def test_report_means_unseen_suites_and_has_every_key(tmp_path):
    suites = {
        "val": {"group": "seen", "tasks": ["action", "scene"],
                "scores": {"videos": 10, "action_top1": 80.0, "action_top5": 95.0, "scene_top1": 60.0, "scene_top5": 90.0}},
        "swap": {"group": "unseen", "tasks": ["action", "scene"],
                 "scores": {"videos": 10, "action_top1": 40.0, "action_top5": 70.0, "scene_top1": 30.0, "scene_top5": 60.0}},
        "scene_only": {"group": "unseen", "tasks": ["scene"],
                       "scores": {"videos": 5, "scene_top1": 50.0, "scene_top5": 80.0}},
    }
    out = report.build_report(suites)
    assert out["action_seen"] == 80.0 and out["action_unseen"] == 40.0
    assert out["scene_seen"] == 90.0 and out["scene_unseen"] == pytest.approx(70.0)
    assert out["scene_unseen_top1"] == pytest.approx(40.0)
    assert out["harmonic_mean"] == pytest.approx(report.harmonic_mean([80, 40, 90, 70]))
    assert set(out["suites"]) == set(suites)
    path = tmp_path / "eval" / "report.json"
    report.write_report(out, str(path))
    assert json.loads(path.read_text())["harmonic_mean"] == pytest.approx(out["harmonic_mean"])
    table = report.format_table({"devias": out})
    assert "devias" in table and "H.M." in table and f"{out['harmonic_mean']:5.1f}" in table
    assert "scene_only" in report.format_suites(out)


def test_a_task_without_model_output_is_nan_not_a_number():
    scores = report.suite_scores(["action", "scene"], np.eye(3)[:2], None, np.array([0, 1]), np.zeros(2, int))
    assert scores["action_top1"] == 100.0
    assert np.isnan(scores["scene_top1"]) and np.isnan(scores["scene_top5"])
