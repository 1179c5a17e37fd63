"""Annotation lists: every official format, path resolution, label and file checks naming file:line."""

import os

import numpy as np
import pytest

from configs import common, defaults
from devias_jax import config_validation
from devias_jax.config_loading import load_config
from devias_jax.data import annotations, sources
from devias_jax.evaluators.suites import open_suites
from tests.conftest import ROOT
from tests.data_helpers import data_config


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return str(path)


def test_two_column_list_resolves_relative_to_root(tmp_path):
    listing = _write(tmp_path / "lists" / "train.txt",
                     "ApplyEyeMakeup/v_a.avi 0\n\n/abs/b.mp4 100\nsub/c.mp4 5\n")
    ann = annotations.load_list(listing, root=str(tmp_path / "videos"), num_actions=101, scene_source="teacher")
    assert ann.paths == (str(tmp_path / "videos" / "ApplyEyeMakeup" / "v_a.avi"), "/abs/b.mp4",
                         str(tmp_path / "videos" / "sub" / "c.mp4"))
    np.testing.assert_array_equal(ann.action, [0, 100, 5])
    np.testing.assert_array_equal(ann.scene, [-1, -1, -1])
    np.testing.assert_array_equal(ann.lines, [1, 3, 4])
    assert len(ann) == 3 and not ann.is_frames.any()


def test_three_column_list_with_scene(tmp_path):
    listing = _write(tmp_path / "l.txt", "a.mp4 1 2\nb.mp4 0 0\nc.mp4 -1 3\n")
    ann = annotations.load_list(listing, root=str(tmp_path), num_actions=2, num_scenes=4, scene_source="list")
    np.testing.assert_array_equal(ann.action, [1, 0, -1])
    np.testing.assert_array_equal(ann.scene, [2, 0, 3])
    # The teacher supplies scenes: the list's column is ignored.
    ann = annotations.load_list(listing, root=str(tmp_path), num_actions=2, num_scenes=4, scene_source="teacher")
    np.testing.assert_array_equal(ann.scene, [-1, -1, -1])


def test_hvu_ids_get_an_extension(tmp_path):
    _write(tmp_path / "v" / "abc123.webm", "x")
    listing = _write(tmp_path / "hvu.txt", "abc123 3 7\nzzz 1 2\n")
    ann = annotations.load_list(listing, root=str(tmp_path / "v"), num_actions=10, num_scenes=10)
    assert ann.paths[0].endswith("abc123.webm")  # found among the known extensions
    assert ann.paths[1].endswith("zzz")  # not found: left as is (decoding reports it)
    ann = annotations.load_list(listing, root=str(tmp_path / "v"), num_actions=10, num_scenes=10, video_ext="mp4")
    assert ann.paths[0].endswith("abc123.mp4")


def test_scuba_frame_folders(tmp_path):
    os.makedirs(tmp_path / "frames" / "clip0")
    listing = _write(tmp_path / "scuba.txt", "frames/clip0 32 4\n")
    ann = annotations.load_list(listing, root=str(tmp_path), num_actions=5, scene_source="teacher")
    assert ann.is_frames.tolist() == [True] and ann.num_frames.tolist() == [32] and ann.action.tolist() == [4]
    # Forced format even when the folder is not there (yet).
    listing = _write(tmp_path / "scuba2.txt", "frames/other 16 2\n")
    ann = annotations.load_list(listing, root=str(tmp_path), num_actions=5, scene_source="none", list_format="frames")
    assert ann.is_frames.tolist() == [True] and ann.num_frames.tolist() == [16]
    # Auto format with the folder missing: the line reads as 'path action scene', and the error says
    # which folder is missing instead of only calling the frame count an action label.
    listing = _write(tmp_path / "scuba3.txt", "frames/missing 240 2\n")
    with pytest.raises(annotations.AnnotationError, match=r"action label 240 is outside.*frame folder .*frames/missing"
                                                          r".* does not exist"):
        annotations.load_list(listing, root=str(tmp_path), num_actions=5, scene_source="none")


@pytest.mark.parametrize("text, match", [
    ("a.mp4\n", r"l.txt:1: expected .* got 1"),
    ("a.mp4 1\nb.mp4 1 2 3 4\n", r"l.txt:2: .*got 5"),
    ("a.mp4 one\n", r"l.txt:1: action label 'one' is not an integer"),
    ("a.mp4 1\n\nb.mp4 7\n", r"l.txt:3: action label 7 is outside \[0, 5\)"),
    ("a.mp4 -2\n", r"l.txt:1: action label -2 is outside"),
])
def test_bad_lines_name_file_line_and_value(tmp_path, text, match):
    listing = _write(tmp_path / "l.txt", text)
    with pytest.raises(annotations.AnnotationError, match=match):
        annotations.load_list(listing, num_actions=5, scene_source="teacher")


def test_scene_checks(tmp_path):
    listing = _write(tmp_path / "l.txt", "a.mp4 1 9\n")
    with pytest.raises(annotations.AnnotationError, match=r"l.txt:1: scene label 9 is outside \[0, 4\)"):
        annotations.load_list(listing, num_actions=5, num_scenes=4, scene_source="list")
    listing = _write(tmp_path / "m.txt", "a.mp4 1\n")
    with pytest.raises(annotations.AnnotationError, match=r"m.txt:1: .*scene_source='list' needs a third column"):
        annotations.load_list(listing, num_actions=5, num_scenes=4, scene_source="list")
    ann = annotations.load_list(listing, num_actions=5, num_scenes=4, scene_source="list", require_scene=False)
    assert ann.scene.tolist() == [-1]


def test_check_files(tmp_path):
    _write(tmp_path / "a.mp4", "data")
    _write(tmp_path / "empty.mp4", "")
    listing = _write(tmp_path / "l.txt", "a.mp4 0\nb.mp4 1\n")
    annotations.load_list(listing, root=str(tmp_path), num_actions=2, scene_source="none")  # not checked
    with pytest.raises(annotations.AnnotationError, match=r"l.txt:2: video '.*b.mp4' does not exist"):
        annotations.load_list(listing, root=str(tmp_path), num_actions=2, scene_source="none", check_files=True)
    listing = _write(tmp_path / "e.txt", "empty.mp4 0\n")
    with pytest.raises(annotations.AnnotationError, match=r"e.txt:1: .*empty \(0 bytes\)"):
        annotations.load_list(listing, root=str(tmp_path), num_actions=2, scene_source="none", check_files=True)
    with pytest.raises(annotations.AnnotationError, match="does not exist"):
        annotations.load_list(str(tmp_path / "nope.txt"), num_actions=2)
    with pytest.raises(annotations.AnnotationError, match="no samples"):
        annotations.load_list(_write(tmp_path / "blank.txt", "\n\n"), num_actions=2)


def _opened(config) -> dict:
    """The training list and every suite's list as the trainer opens them (each once)."""
    return {"train": sources.get(config), **{name: split_sources[0][1] for name, split_sources in
                                             open_suites(config).items()}}


def test_config_lists(tmp_path):
    _write(tmp_path / "train.txt", "a.mp4 0 1\n")
    _write(tmp_path / "val_seen.txt", "b.mp4 1 0\n")
    _write(tmp_path / "hat.txt", "c.mp4 1\n")  # no scene column: fine for an evaluation list
    config = data_config(str(tmp_path))
    config.eval.suites = {"val_seen": common.suite("val_seen.txt", "action,scene", "seen"),
                          "hat": common.suite(str(tmp_path / "hat.txt"), "action", "unseen")}
    parsed = _opened(config)
    assert {name: source.list_path for name, source in parsed.items()} == {
        "train": str(tmp_path / "train.txt"), "val_seen": str(tmp_path / "val_seen.txt"),
        "hat": str(tmp_path / "hat.txt")}
    assert parsed["hat"].annotations.scene.tolist() == [-1] and parsed["hat"].labels(0) == (1, -1)
    config.eval.only = "hat"
    assert set(_opened(config)) == {"train", "hat"}
    config.data.train_list = "missing.txt"
    with pytest.raises(annotations.AnnotationError, match="missing.txt' does not exist"):
        sources.get(config)


def test_config_fields_and_validation():
    config = load_config(os.path.join(ROOT, "configs/ucf101.py"))
    data, augment = config.data, config.augment
    assert (data.frame_stride, data.test_temporal_views, data.test_spatial_views) == (4, 2, 3)
    assert data.scene_source in ("list", "teacher", "none") and data.shuffle and "num_frames" not in data
    assert (augment.rand_augment_m, augment.rand_augment_n, augment.flip) == (7.0, 4, True)
    assert tuple(augment.crop_area) == (0.08, 1.0)
    config_validation.validate(config)
    for key, value, match in [("data.scene_source", "labels", "config.data.scene_source"),
                              ("data.short_side", 100, "config.data.short_side=100 is smaller than the crop"),
                              ("augment.scene_mix_prob", 1.5, "config.augment.scene_mix_prob"),
                              ("augment.fame_blur_size", 10, "config.augment.fame_blur_size"),
                              ("data.max_failure_fraction", -0.1, "config.data.max_failure_fraction"),
                              ("augment.crop_area", (0.5, 0.2), "config.augment.crop_area")]:
        broken = load_config(os.path.join(ROOT, "configs/ucf101.py"))
        section, field = key.split(".")
        broken[section][field] = value
        with pytest.raises(config_validation.ConfigError, match=match):
            config_validation.validate(broken)
    assert defaults.model_config().num_actions == 101
