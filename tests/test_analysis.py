"""k-NN (paper Table 1), retrieval recall, slot counts, attention upsampling and plots on hand-made data."""

import math
import os

import numpy as np
import pytest

from devias_jax import analysis, visualize
from devias_jax.analysis import maths


def _unit(angle_degrees):
    a = math.radians(angle_degrees)
    return [math.cos(a), math.sin(a)]


def test_weighted_knn_hand_computed_case_shows_the_weighting():
    # The query [1, 0] has one class-0 neighbour at cosine 1 and two class-1 neighbours at cosine
    # c = cos(18.19 deg) = 0.95. Votes: class 0 exp(1/T), class 1 2 exp(c/T).
    c = 0.95
    angle = math.degrees(math.acos(c))
    gallery = np.array([_unit(0), _unit(angle), _unit(-angle), _unit(180)], np.float32) * [[3], [0.5], [2], [1]]
    labels = np.array([0, 1, 1, 2])
    query = np.array([[2.0, 0.0]])
    # T = 0.07: exp(1/T) / exp(c/T) = exp(0.05 / 0.07) = 2.04 > 2 -> class 0 (plain majority says 1).
    assert np.exp((1 - c) / 0.07) > 2
    assert analysis.knn_predict(gallery, labels, query, k=3, temperature=0.07).tolist() == [0]
    # T = 1: exp(1) = 2.72 < 2 exp(0.95) = 5.17 -> class 1.
    assert analysis.knn_predict(gallery, labels, query, k=3, temperature=1.0).tolist() == [1]
    # k = 1: the nearest item alone; k beyond the gallery is capped (the class-2 item votes exp(-1/T)).
    assert analysis.knn_predict(gallery, labels, query, k=1).tolist() == [0]
    assert analysis.knn_predict(gallery, labels, query, k=50, temperature=1.0).tolist() == [1]
    # Accuracy in %: two queries, one right at T=0.07.
    queries = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert analysis.weighted_knn(gallery, labels, queries, np.array([0, 1]), k=1, temperature=0.07,
                                 num_classes=3) == 50.0


def test_weighted_knn_votes_match_the_formula():
    rng = np.random.default_rng(0)
    gallery, labels = rng.standard_normal((30, 5)), rng.integers(0, 4, 30)
    queries = rng.standard_normal((7, 5))
    k, temperature = 6, 0.07
    predicted = analysis.knn_predict(gallery, labels, queries, k, temperature, num_classes=4)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    for q, prediction in zip(queries, predicted):
        sim = g @ (q / np.linalg.norm(q))
        top = np.argsort(-sim)[:k]
        votes = [sum(np.exp(sim[i] / temperature) for i in top if labels[i] == c) for c in range(4)]
        assert prediction == int(np.argmax(votes))


def _factor_features(noise=0.0, seed=0, repeats=2):
    """4 actions x 3 scenes x `repeats`: the action feature depends only on the action, the scene feature
    only on the scene (orthogonal one-hot directions), labels balanced and independent."""
    rng = np.random.default_rng(seed)
    action, scene = np.meshgrid(np.arange(4), np.arange(3), indexing="ij")
    action, scene = np.repeat(action.ravel(), repeats), np.repeat(scene.ravel(), repeats)
    eye = np.eye(8, dtype=np.float32)
    return {"action_feature": eye[action] + noise * rng.standard_normal((len(action), 8)),
            "scene_feature": eye[4 + scene] + noise * rng.standard_normal((len(scene), 8)),
            "action": action.astype(np.int32), "scene": scene.astype(np.int32)}


def test_knn_on_disentangled_clusters_gives_the_expected_table():
    train, test = _factor_features(repeats=2), _factor_features(repeats=1)
    table = analysis.knn_table(train, test, num_actions=4, num_scenes=3, ks=(6, 20))
    rows = table["rows"]
    assert list(rows) == ["action->action", "scene->scene", "action->scene", "scene->action"]
    for k in ("6", "20"):
        assert rows["action->action"]["accuracy"][k] == 100.0
        assert rows["scene->scene"]["accuracy"][k] == 100.0
    # k=6: the 6 neighbours of an action feature are its action's items, 2 of each scene: equal votes,
    # the lowest scene wins, right for the queries of scene 0 only: 4 of 12.
    assert rows["action->scene"]["accuracy"]["6"] == pytest.approx(100 * 4 / 12)
    # k=6 of the 8 same-scene items (ties: lower gallery index): actions 0, 1, 2 two votes each -> 0.
    assert rows["scene->action"]["accuracy"]["6"] == pytest.approx(100 * 3 / 12)
    assert rows["action->scene"]["chance"] == pytest.approx(100 / 3)
    assert rows["scene->action"]["chance"] == 25.0
    assert rows["action->action"]["majority"] == 25.0  # the balanced gallery's first class
    assert rows["action->action"]["gallery"] == 24 and rows["action->action"]["queries"] == 12
    text = analysis.format_knn_table(table, "devias")
    assert "action->scene" in text and "devias k=6" in text and "chance" in text and "majority" in text


def test_knn_with_noise_separates_normal_from_reverse():
    train, test = _factor_features(noise=0.15, seed=1, repeats=20), _factor_features(noise=0.15, seed=2, repeats=5)
    rows = analysis.knn_table(train, test, num_actions=4, num_scenes=3, ks=(10, 20))["rows"]
    for k in ("10", "20"):
        assert rows["action->action"]["accuracy"][k] == 100.0 and rows["scene->scene"]["accuracy"][k] == 100.0
        assert rows["action->scene"]["accuracy"][k] < 60.0 and rows["scene->action"]["accuracy"][k] < 50.0


def test_unknown_labels_are_left_out_and_empty_sides_give_nan():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    assert analysis.weighted_knn(gallery, np.array([0, 1, -1]), gallery[:2], np.array([0, -1]), k=1) == 100.0
    assert math.isnan(analysis.weighted_knn(gallery, np.array([-1, -1, -1]), gallery, np.array([0, 1, 0]), k=1))
    assert analysis.majority_rate(np.array([2, 2, 1, -1]), np.array([2, 1, 1, -1])) == pytest.approx(100 / 3)


def test_retrieval_recall_matches_hand_computation():
    gallery = np.array([_unit(0), _unit(10), _unit(30), _unit(90), _unit(200)], np.float32)
    gallery_labels = np.array([1, 0, 2, 0, 1])
    queries = np.array([_unit(4), _unit(95), _unit(-170)], np.float32) * [[2], [1], [5]]
    query_labels = np.array([0, 2, 1])
    # Ranked gallery (by angle): q0 at 4 deg: 0(1), 1(0), 2(2), 3(0), 4(1) -> first hit at rank 2.
    # q1 at 95 deg: 3(0), 2(2), 1(0), 0(1), 4(1) -> rank 2. q2 at 190 deg: 4(1) -> rank 1.
    recall = analysis.retrieval_recall(queries, query_labels, gallery, gallery_labels, ks=(1, 2, 5, 50))
    assert recall == {1: pytest.approx(100 / 3), 2: 100.0, 5: 100.0, 50: 100.0}
    query_labels = np.array([0, 3, -1])  # label 3 is never in the gallery; -1 is left out
    recall = analysis.retrieval_recall(queries, query_labels, gallery, gallery_labels, ks=(1, 2))
    assert recall == {1: 0.0, 2: 50.0}
    table = analysis.retrieval_table({"action_feature": gallery, "action": gallery_labels},
                                     {"action_feature": queries, "action": np.array([0, 2, 1])},
                                     features=("action_feature",), labels=("action",), ks=(1, 2))
    assert table["rows"]["action_feature/action"]["recall"] == {"1": pytest.approx(100 / 3), "2": 100.0}
    assert "R@2" in analysis.format_retrieval_table(table)


def test_cosine_topk_orders_by_similarity_then_index_in_chunks(monkeypatch):
    monkeypatch.setattr(maths, "_SIMILARITY_CHUNK", 6)  # 2 query rows per chunk over 3 gallery rows
    gallery = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    sims, indices = analysis.cosine_topk(np.array([[1.0, 0.1], [0.0, 3.0], [1.0, 1.0]]), gallery, 2)
    assert indices.tolist() == [[0, 1], [2, 0], [0, 1]]
    np.testing.assert_allclose(sims[2], [np.sqrt(0.5)] * 2, rtol=1e-6)


def test_slot_frequency_counts_each_role():
    frequency = analysis.slot_frequency(np.array([[0, 0], [0, 1], [0, 0]]), np.array([[1, 1], [1, 1], [0, 1]]),
                                        num_slots=3)
    assert frequency["action"] == [5, 1, 0] and frequency["scene"] == [1, 5, 0]
    assert frequency["views"] == 6 and frequency["same_slot"] == 2
    assert frequency["action_fraction"][0] == pytest.approx(5 / 6)


def test_upsampling_and_frame_maps():
    np.testing.assert_allclose(visualize.upsample_bilinear(np.full((2, 3), 0.25), (8, 12)), 0.25)
    up = visualize.upsample_bilinear(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(up, [[0.0, 0.25, 0.75, 1.0]])
    # 2 tubelets of 2x2 tokens; frames 0-1 take tubelet 0, frames 2-3 tubelet 1.
    attention = np.concatenate([np.zeros(4), np.ones(4)])
    maps = visualize.attention_frames(attention, (2, 2, 2), 2, 4, (6, 6))
    assert maps.shape == (4, 6, 6)
    np.testing.assert_allclose(maps[:2], 0.0)
    np.testing.assert_allclose(maps[2:], 1.0)


def test_plots_are_written(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    attention = rng.random((2, 2 * 2 * 2))
    path = visualize.plot_attention_maps(frames, attention, (2, 2, 2), 2, 0, 1, str(tmp_path / "a" / "att.png"),
                                         max_frames=3, title="t")
    features = _factor_features(noise=0.1, repeats=2)
    points = {name: analysis.embed_2d(features[name], "tsne", seed=0) for name in ("action_feature", "scene_feature")}
    assert points["action_feature"].shape == (24, 2) and np.isfinite(points["action_feature"]).all()
    emb = visualize.plot_embeddings(points, features["action"], features["scene"], str(tmp_path / "tsne.png"),
                                    method="tsne")
    slots = visualize.plot_slot_frequency(analysis.slot_frequency(np.zeros(5), np.ones(5), 2),
                                          str(tmp_path / "slots.png"))
    for file in (path, emb, slots):
        assert os.path.getsize(file) > 1000
        with open(file, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_umap_embedding_runs_and_keeps_clusters_apart(monkeypatch):
    # umap-learn's numba kernels compile in every new process; without LLVM optimisation that takes
    # half the time (read when numba is first imported; the results are the same).
    monkeypatch.setenv("NUMBA_OPT", "0")
    features = _factor_features(noise=0.05, repeats=6)  # 72 points
    points = analysis.embed_2d(features["action_feature"], "umap", seed=0)
    assert points.shape == (72, 2) and np.isfinite(points).all()
    centres = np.stack([points[features["action"] == a].mean(0) for a in range(4)])
    spread = max(np.linalg.norm(points[features["action"] == a] - centres[a], axis=1).mean() for a in range(4))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(4) for b in range(a + 1, 4)]
    assert min(gaps) > spread


def test_analysis_config_defaults_and_validation():
    from devias_jax import config_validation
    from devias_jax.config_loading import load_config
    from tests.conftest import ROOT

    demo = load_config(os.path.join(ROOT, "configs/demo.py:smoke"))
    lists = analysis.analysis_lists(demo)
    assert (lists["train"], lists["test"], lists["embedding"], lists["slots"]) == (
        "train.txt", "val_seen.txt", "val_seen.txt", "val_seen.txt")
    assert analysis.analysis_lists(load_config(os.path.join(ROOT, "configs/ucf101.py")))["test"] == "val.txt"
    config_validation.validate(demo)
    for key, value, message in (("embedding", "pca", "config.analysis.embedding"),
                                ("knn_ks", (10, 0), "config.analysis.knn_ks"),
                                ("retrieval_ks", (), "config.analysis.retrieval_ks"),
                                ("knn_temperature", 0.0, "config.analysis.knn_temperature"),
                                ("batch_size", -8, "config.analysis.batch_size"),
                                ("scene_feature", " ", "config.analysis.scene_feature")):
        config = load_config(os.path.join(ROOT, "configs/demo.py:smoke"), {f"analysis.{key}": value})
        with pytest.raises(config_validation.ConfigError, match=message):
            config_validation.validate(config)


@pytest.mark.parametrize("script", ["extract_features", "visualize"])
def test_scripts_document_their_flags(script):
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-m", f"scripts.{script}", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "--workdir" in result.stdout and "--config" in result.stdout and "--output" in result.stdout


def test_within_group_agreement_finds_a_scene_feature_that_keeps_the_action():
    train, test = _factor_features(noise=0.05, seed=3, repeats=6), _factor_features(noise=0.05, seed=4, repeats=2)
    # the scene feature alone: within one scene every action is as near as any other -> the base rate
    clean = analysis.within_group_agreement(train["scene_feature"], train["scene"], train["action"],
                                            test["scene_feature"], test["scene"], test["action"])
    assert clean["base_rate"] == pytest.approx(25.0) and clean["queries"] == 24
    assert clean["agreement"] < 60.0
    # a scene feature that also carries the action (scene + action directions) -> its nearest clip of
    # the query's scene has the query's action
    found = analysis.within_group_agreement(train["scene_feature"] + train["action_feature"], train["scene"],
                                            train["action"], test["scene_feature"] + test["action_feature"],
                                            test["scene"], test["action"])
    assert found["agreement"] == 100.0
    unknown = analysis.within_group_agreement(train["scene_feature"], train["scene"], train["action"],
                                              test["scene_feature"], np.full(24, -1), test["action"])
    assert unknown["queries"] == 0 and math.isnan(unknown["agreement"])


def test_variation_cosine_is_minus_one_for_mirrored_slots_and_near_zero_for_independent_ones():
    rng = np.random.default_rng(0)
    action = rng.standard_normal((400, 16))
    assert analysis.variation_cosine(action, 5.0 - 2.0 * action) == pytest.approx(-1.0)
    assert abs(analysis.variation_cosine(action, rng.standard_normal((400, 16)))) < 0.2
    with pytest.raises(ValueError, match="expected equal"):
        analysis.variation_cosine(action, action[:, :8])
    train = _factor_features(noise=0.05, seed=5, repeats=4)
    leak = analysis.leak_table(train, train)
    assert set(leak) == {"scene_feature_within_scene_action", "action_feature_within_action_scene",
                         "variation_cosine"}
    assert "base rate" in analysis.format_leak_table(leak)
