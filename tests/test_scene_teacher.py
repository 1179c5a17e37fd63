"""The scene teacher end to end on synthetic scenes: trained on images through the trainer
(configs/places365_scene.py), pseudo scene labels for a video list (scripts/pseudo_scene_labels.py),
and DEVIAS trained with the same teacher online (data.scene_source='teacher')."""

import json
import os

import numpy as np
import pytest

from devias_jax import monitoring
from devias_jax.data import sources
from devias_jax.inference import load_model
from scripts.pseudo_scene_labels import pseudo_label
from tests.data_helpers import TINY, tiny_dataset
from tests.teacher_helpers import GEOMETRY, devias_with_online_teacher, teacher_config, trained_teacher

pytestmark = pytest.mark.slow  # a scene teacher trained through the trainer, then DEVIAS with it online

CHANCE = 100.0 / TINY.num_scenes


@pytest.fixture(scope="module")
def teacher():
    return trained_teacher()


def test_teacher_trains_on_scene_images_through_the_trainer(teacher):
    saved = json.load(open(os.path.join(teacher.workdir, "config.json")))
    assert saved["data"]["source"] == "image_folder" and saved["model"]["name"] == "scene_vit"
    assert saved["model"]["pooling"] == "cls" and saved["model"]["num_prefix_tokens"] == 1
    records = [r for r in monitoring.read_metrics(teacher.workdir) if r["split"] == "train"]
    assert records[-1]["loss"] < records[0]["loss"]
    report = json.load(open(os.path.join(teacher.workdir, "eval", "report.json")))
    assert report["suites"]["val"]["videos"] == 16  # 4 held-out images per scene, one view each
    assert teacher.result["scene_seen_top1"] >= 2 * CHANCE


def test_pseudo_scene_labels_recover_the_true_scene(teacher, tmp_path):
    root = tiny_dataset()
    lines = []
    for name in ("scene_only.txt", "val_unseen.txt"):  # true scenes in the third column; actors in val_unseen
        lines += open(os.path.join(root, name)).read().split("\n")
    lines = [line for line in lines if line.strip()]
    lines.insert(3, "videos/missing.mp4 2")  # undecodable: scene -1, NaN scores
    listing = tmp_path / "to_label.txt"
    listing.write_text("\n".join(lines) + "\n")
    output = str(tmp_path / "labelled.txt")
    config = teacher_config("", **{"data.max_failure_fraction": 0.5})
    summary = pseudo_label(config, teacher.workdir, str(listing), output, root=root, progress=False)

    written = [line.split() for line in open(output).read().splitlines()]
    assert len(written) == len(lines) and summary["labelled"] == len(lines) - 1
    for original, new in zip(lines, written):  # path and action kept, scene column (re)written
        assert new[:2] == original.split()[:2] and len(new) == 3
    scores = np.load(str(tmp_path / "labelled.npz"))
    assert scores["probs"].shape == (len(lines), TINY.num_scenes)
    assert scores["paths"].tolist() == [line.split()[0] for line in lines]
    predicted = np.asarray([int(new[2]) for new in written])
    assert predicted[3] == -1 and not scores["valid"][3] and np.isnan(scores["probs"][3]).all()
    valid = scores["valid"]
    np.testing.assert_allclose(scores["probs"][valid].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(scores["probs"][valid].argmax(-1), predicted[valid])
    truth = np.asarray([int(line.split()[2]) for line in lines[:3] + lines[4:]])
    accuracy = 100.0 * np.mean(predicted[valid] == truth)
    scene_only = 100.0 * np.mean(predicted[valid][:8] == truth[:8])
    print(f"pseudo labels: {accuracy:.1f}% of {len(truth)} videos, scene-only {scene_only:.1f}% (chance {CHANCE}%)")
    assert accuracy >= 2 * CHANCE and scene_only >= 2 * CHANCE


def test_devias_trains_with_the_online_teacher(teacher):
    run = devias_with_online_teacher()
    config, result = run.config, run.result
    assert config.augment.scene_mix_prob > 0  # the teacher sees the scene-mixed clip
    assert {k: config.loss.teacher[k] for k in GEOMETRY} == {k: teacher.config.model[k] for k in GEOMETRY}
    assert "scene" not in run.loss_targets and "scene_teacher_logits" in run.loss_targets
    assert result["step"] == 4 and np.isfinite(result["loss"]) and result["loss_scene"] > 0
    assert len(run.seen) == 4  # every step's clip and teacher logits, as the loss saw them
    predictor = load_model(teacher.config, teacher.workdir)
    for clips, logits in run.seen:
        assert clips.shape == (8, 4, 32, 32, 3) and logits.shape == (8, TINY.num_scenes)
        np.testing.assert_allclose(np.asarray(predictor(clips)["scene_logits"]), logits, rtol=1e-4, atol=1e-4)
    # evaluation lists keep their own scene column (e.g. pseudo labels) under scene_source='teacher';
    # the training list's column is ignored (the teacher supplies the scene targets)
    truth = [int(line.split()[2]) for line in open(os.path.join(tiny_dataset(), "scene_only.txt"))]
    assert sources.get(config, "scene_only.txt").annotations.scene.tolist() == truth
    assert (sources.get(config).annotations.scene == -1).all()
    saved = json.load(open(os.path.join(run.workdir, "config.json")))
    assert saved["data"]["scene_source"] == "teacher" and saved["loss"]["teacher"]["checkpoint"] == teacher.workdir
