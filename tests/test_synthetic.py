"""The synthetic action/scene dataset: splits, correlation, real H.264 files, masks, determinism."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from devias_jax.data import annotations, decode, synthetic
from tests.conftest import ROOT
from tests.data_helpers import TINY, tiny_dataset


def test_plan_splits_and_correlation():
    spec = synthetic.Spec(train_per_action=300, correlation=0.9)
    layout = synthetic.plan(spec)
    train = np.asarray(layout["train"])
    home = np.asarray([spec.home_scene(a) for a in train[:, 0]])
    assert abs((train[:, 1] == home).mean() - 0.9) < 0.03
    assert np.bincount(train[:, 0]).tolist() == [300] * 6
    assert set(map(tuple, train.tolist())) > {(a, spec.home_scene(a)) for a in range(6)}  # some off-home
    for action, scene in layout["val_seen"]:
        assert scene == spec.home_scene(action)
    unseen = np.asarray(layout["val_unseen"])
    assert (unseen[:, 1] != np.asarray([spec.home_scene(a) for a in unseen[:, 0]])).all()
    assert len(set(unseen[:, 1].tolist())) == 6  # every other scene appears
    only = np.asarray(layout["scene_only"])
    assert (only[:, 0] == -1).all() and np.bincount(only[:, 1]).tolist() == [10] * 6
    assert synthetic.plan(synthetic.Spec(correlation=0.0))["train"] != synthetic.plan(spec)["train"]
    with pytest.raises(ValueError):
        synthetic.Spec(num_actions=len(synthetic.ACTIONS) + 1)
    for bad in (dict(num_actions=2, actions=("rise",)), dict(num_actions=2, actions=("rise", "jump")),
                dict(num_actions=2, actions=("rise", "rise")), dict(clutter=1.5)):
        with pytest.raises(ValueError):
            synthetic.Spec(**bad)


@pytest.mark.parametrize("correlation", [1 / 6, 0.0, 0.5, 1.0])
def test_correlation_is_the_home_scene_probability(correlation):
    """Spec.correlation = P(training clip in its action's home scene); the rest spread uniformly over the
    other scenes, so 1/num_scenes makes action and scene independent and 0 anti-correlates them. Uses
    only the list plan (no video). The draws are Bernoulli(correlation): the home-scene count of n clips
    has standard deviation sqrt(n p (1 - p)); a 4-sigma bound fails by chance with probability ~6e-5."""
    spec = synthetic.Spec(num_actions=6, num_scenes=6, train_per_action=2000, correlation=correlation, seed=5)
    train = np.asarray(synthetic.plan(spec)["train"])
    actions, scenes = train[:, 0], train[:, 1]
    home = scenes == np.asarray([spec.home_scene(a) for a in actions])
    n = len(train)
    assert abs(home.sum() - n * correlation) <= 4 * np.sqrt(n * correlation * (1 - correlation))
    # Per action, each scene's count: home ~ Binomial(m, p), each other ~ Binomial(m, (1 - p) / (S - 1)).
    m, num_scenes = spec.train_per_action, spec.num_scenes
    for action in range(spec.num_actions):
        counts = np.bincount(scenes[actions == action], minlength=num_scenes)
        p = np.full(num_scenes, (1 - correlation) / (num_scenes - 1))
        p[spec.home_scene(action)] = correlation
        # (at correlation = 1/S every p is 1/S: the scene does not depend on the action)
        assert (np.abs(counts - m * p) <= 4 * np.sqrt(m * p * (1 - p))).all(), (action, counts)


def test_chosen_motions_move_the_actor_as_named():
    """Spec.actions picks the motions; 'rise' moves the actor up, 'fall' down, 'grow' enlarges it."""
    spec = synthetic.Spec(num_actions=3, actions=("rise", "fall", "grow"), motion=0.2, noise=0.0)
    assert spec.action_names == ("rise", "fall", "grow")
    rng = np.random.default_rng(0)
    masks = [synthetic.render_clip(spec, action, 0, rng)[1] for action in range(3)]
    centre_y = [np.nonzero(m[t])[0].mean() for m in masks[:2] for t in (0, -1)]
    assert centre_y[1] < centre_y[0] - 10 and centre_y[3] > centre_y[2] + 10  # rise: up; fall: down
    assert masks[2][-1].sum() > 1.5 * masks[2][0].sum()  # grow: area 0.7^2 -> 1.3^2


def test_generated_dataset_files_lists_and_masks():
    root = tiny_dataset()
    with open(os.path.join(root, "dataset.json")) as handle:
        summary = json.load(handle)
    assert summary["counts"] == {"train": 24, "val_seen": 12, "val_unseen": 12, "scene_only": 8}
    assert summary["actions"] == ["sway", "bounce", "circle", "diagonal"]
    decoder = decode.VideoDecoder()
    for split in synthetic.SPLITS:
        ann = annotations.load_list(os.path.join(root, f"{split}.txt"), root=root, num_actions=TINY.num_actions,
                                    num_scenes=TINY.num_scenes, scene_source="list", check_files=True)
        assert len(ann) == summary["counts"][split]
        path = ann.paths[0]
        with open(path, "rb") as handle:
            assert b"ftyp" in handle.read(64)  # an MP4 container
        frames = decoder.read(path, lambda n: np.arange(n))
        assert frames.shape == (TINY.frames, TINY.height, TINY.width, 3)
        mask_path = path.replace(f"{os.sep}videos{os.sep}", f"{os.sep}masks{os.sep}").replace(".mp4", ".npz")
        if split == "scene_only":
            assert (ann.action == -1).all() and not os.path.exists(mask_path)
            assert np.abs(np.diff(frames.astype(int), axis=0)).mean() < 4  # a static background
        else:
            mask = synthetic.load_actor_mask(mask_path)
            assert mask.shape == (TINY.frames, TINY.height, TINY.width) and mask.dtype == bool
            coverage = mask.mean(axis=(1, 2))
            assert (coverage > 0.02).all() and (coverage < 0.3).all()
            # The actor moves: the mask changes over time, and the pixels change where it moves.
            assert (mask[0] != mask[TINY.frames // 2]).any()
            moving = np.abs(np.diff(frames.astype(int), axis=0)).sum(-1)
            assert moving[mask[1:] | mask[:-1]].mean() > 3 * moving[~(mask[1:] | mask[:-1])].mean()
    # H.264 in the container, as decord/ffmpeg report it.
    import av

    with av.open(os.path.join(root, "videos", "train", "train_00000.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_generation_is_deterministic(tmp_path):
    """Byte-identical files from the same seed: serially, in spawned workers, and again in this process
    after other allocations (x264 once read uninitialised heap memory; see synthetic.write_mp4)."""
    spec = synthetic.Spec(num_actions=2, num_scenes=2, frames=12, height=32, width=32, train_per_action=2,
                          val_per_action=1, scene_only_per_scene=1, seed=11)

    def digest(out):
        files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs
                       if f != "dataset.json")
        return {f: hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest() for f in files}

    synthetic.generate(str(tmp_path / "a"), spec)
    synthetic.generate(str(tmp_path / "b"), spec, workers=2)
    synthetic.generate(str(tmp_path / "a2"), spec)
    first, second = digest(str(tmp_path / "a")), digest(str(tmp_path / "b"))
    assert first == second and len(first) == 4 + 10 + 8  # lists, videos (4 + 2 + 2 + 2), masks
    assert digest(str(tmp_path / "a2")) == first
    synthetic.generate(str(tmp_path / "c"), synthetic.Spec(**{**spec.__dict__, "seed": 12}))
    third = digest(str(tmp_path / "c"))
    assert third.keys() == first.keys() and third != first
    # dataset.json gives the spec back (fame checks re-render clips from it); a record from before the
    # scene_hues option was made with the golden-ratio hues
    assert synthetic.spec_of_dataset(str(tmp_path / "a")) == spec
    record = json.load(open(tmp_path / "a" / "dataset.json"))
    del record["spec"]["scene_hues"]
    json.dump(record, open(tmp_path / "a" / "dataset.json", "w"))
    assert synthetic.spec_of_dataset(str(tmp_path / "a")).scene_hues == "golden"


def test_scenes_differ_and_actors_vary():
    spec = synthetic.Spec()
    means = []
    for scene in range(spec.num_scenes):
        background = synthetic.render_background(spec, scene, np.random.default_rng(scene))
        means.append(background.mean(axis=(0, 1)))
    means = np.asarray(means)
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(spec.num_scenes, dtype=bool)].min() > 0.02  # distinct palettes
    a, _ = synthetic.render_clip(spec, 0, 0, np.random.default_rng(1))
    b, _ = synthetic.render_clip(spec, 0, 0, np.random.default_rng(2))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5  # same classes, different video


def _palette_nearest_neighbour_accuracy(spec):
    """Nearest neighbour on the mean colour of 30 independent draws per scene against 30 others."""
    colours = np.asarray([[synthetic.render_background(spec, scene, np.random.default_rng([scene, i]))
                           .mean(axis=(0, 1)) for i in range(60)] for scene in range(spec.num_scenes)])
    reference, query = colours[:, ::2].reshape(-1, 3), colours[:, 1::2].reshape(-1, 3)  # (6*30, 3) each
    labels = np.repeat(np.arange(spec.num_scenes), 30)
    nearest = labels[np.argmin(((query[:, None] - reference[None]) ** 2).sum(-1), axis=1)]
    return (nearest == labels).mean()


def test_flat_scenes_are_told_apart_by_their_palette():
    # at clutter 0 (the demo's scenes) the palette is the scene's only cue: evenly spaced hues (the demo's)
    # keep six scenes apart; the default golden-ratio spacing puts scenes 0 and 5 0.09 apart
    assert _palette_nearest_neighbour_accuracy(synthetic.Spec(clutter=0.0, scene_hues="even")) >= 0.9
    assert _palette_nearest_neighbour_accuracy(synthetic.Spec(clutter=0.0)) < 0.9


def test_script_writes_a_dataset(tmp_path):
    out = tmp_path / "syn"
    result = subprocess.run(
        [sys.executable, "-m", "scripts.make_synthetic_dataset", f"--out={out}", "--seed=1",
         "--num_actions=2", "--num_scenes=2", "--frames=10", "--height=32", "--width=32", "--train_per_action=2",
         "--val_per_action=1", "--scene_only_per_scene=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--config.data.root=" in result.stdout
    for split in synthetic.SPLITS:
        assert (out / f"{split}.txt").exists()


def _scene_only_motion(spec: synthetic.Spec) -> float:
    """Mean absolute frame-to-frame change of an actor-free clip (uint8 units)."""
    frames, _ = synthetic.render_clip(spec, -1, 2, np.random.default_rng(4))
    return float(np.abs(np.diff(frames.astype(int), axis=0)).mean())


def test_background_motion_moves_the_background_and_camera_motion_moves_the_actor_too():
    """'static' backgrounds stay still (only the pixel noise changes); 'drift', 'pan' and 'shake' move
    them. A moving camera ('pan', 'shake') shifts the actor with the scene; a drifting texture does not."""
    base = dict(num_actions=1, actions=("grow",), motion=0.2, clutter=1.0, noise=0.0)
    still = _scene_only_motion(synthetic.Spec(**base))
    assert still == 0.0
    for motion in ("drift", "pan", "shake"):
        assert _scene_only_motion(synthetic.Spec(**base, background_motion=motion, background_speed=0.02)) > 3.0

    def actor_centres(background_motion):
        spec = synthetic.Spec(**base, background_motion=background_motion, background_speed=0.03)
        _, mask = synthetic.render_clip(spec, 0, 0, np.random.default_rng(9))
        return np.asarray([np.argwhere(m).mean(axis=0) for m in mask])  # (T, 2): 'grow' stays in place

    # 'grow' keeps its centre: it moves only when the camera does (by up to 0.03 * 64 * 19.5 * 1.2 px)
    assert np.abs(actor_centres("static") - actor_centres("static")[0]).max() < 0.5
    assert np.abs(actor_centres("drift") - actor_centres("drift")[0]).max() < 0.5
    assert np.abs(actor_centres("pan") - actor_centres("pan")[0]).max() > 10
    shake = actor_centres("shake")
    assert np.abs(np.diff(shake, axis=0)).mean() > 0.5  # jitters from frame to frame


def test_drift_and_pan_scroll_the_scene_in_one_direction():
    """A steady scroll: frame t + 1 matches frame t shifted by the same sub-pixel step, so the best
    integer shift between the first and last frame is about 0.01 * 64 * 39 ~ 25 px (0.8-1.2 speed)."""
    spec = synthetic.Spec(num_actions=1, actions=("grow",), clutter=1.0, noise=0.0, background_motion="drift")
    frames, _ = synthetic.render_clip(spec, -1, 0, np.random.default_rng(3))
    first, last = frames[0].astype(float), frames[-1].astype(float)
    errors = {}
    for dy in range(-32, 33):
        for dx in range(-32, 33):
            a = first[max(dy, 0):64 + min(dy, 0), max(dx, 0):64 + min(dx, 0)]
            b = last[max(-dy, 0):64 + min(-dy, 0), max(-dx, 0):64 + min(-dx, 0)]
            errors[dy, dx] = np.abs(a - b).mean()
    dy, dx = min(errors, key=errors.get)
    assert 0.8 * 0.64 * 39 - 1 <= np.hypot(dy, dx) <= 1.2 * 0.64 * 39 + 1
    assert errors[dy, dx] < 0.25 * errors[0, 0]


def test_actor_shapes_differ_and_mixed_draws_each():
    """Same random stream (same size, elongation and angle), three outlines: a box covers more area than
    the ellipse (a superellipse of exponent 6 fills ~1.2x the ellipse's), a five-pointed star has a much
    longer outline for its area; 'mixed' draws each of them."""
    def area_and_outline(shape):
        spec = synthetic.Spec(num_actions=1, actions=("grow",), actor_shape=shape, noise=0.0)
        mask = synthetic.render_clip(spec, 0, 0, np.random.default_rng(0))[1][0]
        inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        return mask.sum(), mask.sum() - inner.sum()

    (ellipse, ellipse_edge), (box, _), (star, star_edge) = map(area_and_outline, ("ellipse", "box", "star"))
    assert box > 1.1 * ellipse
    assert star_edge ** 2 / star > 1.3 * ellipse_edge ** 2 / ellipse
    spec = synthetic.Spec(actor_shape="mixed")
    drawn = {synthetic.actor_shape(spec, np.random.default_rng(seed)) for seed in range(20)}
    assert drawn == {"ellipse", "box", "star"}
    assert synthetic.actor_shape(synthetic.Spec(actor_shape="star"), np.random.default_rng(0)) == "star"


def test_new_generator_options_are_checked():
    for bad in (dict(background_motion="zoom"), dict(background_speed=0.5), dict(actor_shape="cube"),
                dict(scene_hues="rainbow")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            synthetic.Spec(**bad)
