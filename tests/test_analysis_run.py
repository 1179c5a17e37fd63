"""The analysis commands end to end on generated videos: --mode=knn / retrieval, feature extraction
(.npy), attention / embedding / slot plots (PNG). The model is the tiny DEVIAS of the trainer tests with
seeded random parameters, saved as a trainer checkpoint (step 6) with the trainer's own checkpoint
class, so the commands find it in the workdir as they would after training (compiling a training step,
or even the initialisers, costs 15-60 s here)."""

import json
import os

import jax
import numpy as np
import pytest

from devias_jax import analysis, evaluate
from tests.data_helpers import TINY
from tests.train_helpers import tiny_train_config

pytestmark = pytest.mark.slow  # its fixture trains a run; every analysis mode end to end

PNG = b"\x89PNG\r\n\x1a\n"


def _config(method="devias", **overrides):
    return tiny_train_config(method, **{"eval.suites": {}, "analysis.knn_test_list": "val_seen.txt",
                                        "analysis.embedding": "tsne", "analysis.attention_videos": 2,
                                        **overrides})


def _random_model(config, seed=0):
    """(graphdef, params): the model's structure with seeded random parameters (kernels and tokens
    N(0, 0.02), norm scales 1, biases 0), built without running any initialiser."""
    from flax import nnx

    from devias_jax.methods import build_model

    rng = np.random.default_rng(seed)

    def value(keypath, leaf):
        name = str(getattr(keypath[-1], "key", keypath[-1]))
        if name == "scale":
            return np.ones(leaf.shape, leaf.dtype)
        if name.endswith("bias"):
            return np.zeros(leaf.shape, leaf.dtype)
        return (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

    graphdef, state = nnx.split(nnx.eval_shape(lambda: build_model(config.model, rngs=nnx.Rngs(0))), nnx.Param)
    return graphdef, jax.tree_util.tree_map_with_path(value, state.to_pure_dict())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from devias_jax.checkpoint import Checkpoints

    config = _config()
    workdir = str(tmp_path_factory.mktemp("analysis") / "devias")
    _, params = _random_model(config, seed=config.seed)
    checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), config.checkpoint)
    checkpoints.save(6, {"params": params, "step": np.int32(6)}, {"step": 6})
    checkpoints.close()
    return workdir


def _list_rows(name):
    with open(os.path.join(_config().data.root, name)) as handle:
        return [line.split() for line in handle if line.strip()]


def test_knn_and_retrieval_modes(trained, capsys):
    import main

    config = _config()
    main.MODES["knn"](config, trained)
    printed = capsys.readouterr().out
    assert "normal" in printed and "reverse" in printed and "devias k=10" in printed and "chance" in printed
    table = json.load(open(os.path.join(trained, "eval", "knn.json")))
    assert table["step"] == 6 and table["num_train"] == 24 and table["num_test"] == 12
    assert table["ks"] == [10, 20] and table["temperature"] == 0.07
    assert table["train_list"].endswith("train.txt") and table["test_list"].endswith("val_seen.txt")
    assert sorted(table["rows"]) == sorted(["action->action", "scene->scene", "action->scene", "scene->action"])
    for row in table["rows"].values():
        assert row["chance"] == 25.0 and 0.0 <= row["majority"] <= 100.0
        assert all(0.0 <= v <= 100.0 for v in row["accuracy"].values())
    cached = [sorted(f for f in os.listdir(os.path.join(trained, "eval", "features")) if f.startswith(prefix))
              for prefix in ("train-", "val_seen-")]
    assert [len(files) for files in cached] == [1, 1]
    cached = [files[0] for files in cached]

    main.MODES["retrieval"](config, trained)
    printed = capsys.readouterr().out
    assert "R@50" in printed and printed.count("from " + os.path.join(trained, "eval", "features")) == 2
    result = json.load(open(os.path.join(trained, "eval", "retrieval.json")))
    assert sorted(result["rows"]) == ["action_feature/action", "action_feature/scene",
                                      "scene_feature/action", "scene_feature/scene"]
    features = {side: dict(np.load(os.path.join(trained, "eval", "features", name)))
                for side, name in zip(("train", "test"), cached)}
    for row in result["rows"].values():
        recall = [row["recall"][str(k)] for k in (1, 5, 10, 20, 50)]
        assert recall == sorted(recall) and recall[-1] == 100.0  # every label is among the 24 train videos
        expected = analysis.retrieval_recall(features["test"][row["feature"]], features["test"][row["label"]],
                                             features["train"][row["feature"]], features["train"][row["label"]])
        assert recall == [expected[k] for k in (1, 5, 10, 20, 50)]
    assert features["test"]["video_ids"].tolist() == [r[0] for r in _list_rows("val_seen.txt")]
    assert features["test"]["scene"].tolist() == [int(r[2]) for r in _list_rows("val_seen.txt")]


def test_extract_features_writes_npy_and_views_average(trained, tmp_path):
    config = _config()
    names = ["action_feature", "scene_feature", "gap", "slots"]
    files = analysis.run_extract(config, trained, list_path="val_seen.txt", names=names, output=str(tmp_path / "f"))
    assert all(os.path.getsize(f) > 0 for f in files)
    loaded = {n: np.load(tmp_path / "f" / f"{n}.npy") for n in names + ["action", "scene", "video_ids", "index"]}
    dim = config.model.embed_dim
    assert loaded["action_feature"].shape == (12, dim) and loaded["gap"].shape == (12, dim)
    assert loaded["slots"].shape == (12, config.model.num_slots, dim)
    assert loaded["index"].tolist() == list(range(12))
    rows = _list_rows("val_seen.txt")
    assert loaded["video_ids"].tolist() == [r[0] for r in rows]
    assert loaded["action"].tolist() == [int(r[1]) for r in rows]
    meta = json.load(open(tmp_path / "f" / "features.json"))
    assert meta["arrays"]["slots"]["shape"] == [12, 2, dim] and meta["video_ids"] == [r[0] for r in rows]

    model = analysis.load_trained(config, trained)
    per_view = analysis.extract_features(config, model, "val_seen.txt", ["slots", "action_slot"], per_view=True)
    views = config.data.test_temporal_views * config.data.test_spatial_views
    assert per_view["slots"].shape == (12, views, 2, dim) and per_view["action"].tolist() == loaded["action"].tolist()
    np.testing.assert_allclose(per_view["slots"].mean(axis=1), loaded["slots"], rtol=1e-4, atol=1e-5)
    assert set(np.unique(per_view["action_slot"])) <= {0.0, 1.0}


def test_visualize_writes_pngs(trained, tmp_path):
    files = analysis.run_visualize(_config(), trained, output=str(tmp_path / "plots"))
    names = sorted(os.path.basename(f) for f in files)
    assert len([n for n in names if n.startswith("attention_")]) == 2
    assert "tsne.png" in names and "slot_frequency.png" in names
    for file in files:
        with open(file, "rb") as handle:
            assert handle.read(8) == PNG and os.path.getsize(file) > 2000
    frequency = json.load(open(tmp_path / "plots" / "slot_frequency.json"))
    assert frequency["views"] == 12 * 6 and sum(frequency["action"]) == sum(frequency["scene"]) == 72


def test_baseline_features_without_a_checkpoint():
    from flax import nnx

    config = _config("two_token")
    model = analysis.from_model(nnx.merge(*_random_model(config)))
    features = analysis.extract_features(config, model, "scene_only.txt", ["action_feature", "gap"])
    count = TINY.num_scenes * TINY.scene_only_per_scene
    assert features["action_feature"].shape == (count, config.model.embed_dim)
    assert features["gap"].shape == (count, config.model.embed_dim)
    with pytest.raises(KeyError, match="no output \\['attention'\\]"):
        analysis.extract_features(config, model, "scene_only.txt", ["attention"])


NEW_EVALUATOR = '''"""the parameter count and the mean of every parameter -> <workdir>/eval/parameters.json"""

import json
import os

import jax
import numpy as np


class Evaluator:
    def __init__(self, config, graphdef, mesh, workdir, *, source=""):
        self.workdir, self.source = workdir, source

    def run(self, params, *, step=None):
        leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
        result = {"parameters": int(sum(leaf.size for leaf in leaves)), "step": step, "checkpoint": self.source,
                  "mean": float(sum(leaf.sum() for leaf in leaves) / sum(leaf.size for leaf in leaves))}

        os.makedirs(os.path.join(self.workdir, "eval"), exist_ok=True)
        with open(os.path.join(self.workdir, "eval", "parameters.json"), "w") as handle:
            json.dump(result, handle)
        return result
'''


def test_a_new_evaluator_is_one_new_module(trained, tmp_path, monkeypatch):
    """Dropping one module with an `Evaluator` class into the evaluators package is all it takes: it is
    listed, described and run on the workdir's checkpoint like knn and retrieval (main.py --mode=<name>)."""
    from devias_jax import evaluators

    folder = tmp_path / "more_evaluators"
    folder.mkdir()
    (folder / "parameter_stats.py").write_text(NEW_EVALUATOR)
    monkeypatch.setattr(evaluators, "__path__", [*evaluators.__path__, str(folder)])
    assert evaluators.names() == ["knn", "parameter_stats", "retrieval", "suites"]
    assert evaluators.summary("parameter_stats").startswith("the parameter count")
    result = evaluate.run_evaluator("parameter_stats", _config(), trained)
    _, params = _random_model(_config(), seed=_config().seed)  # what `trained` saved
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    assert result["step"] == 6 and result["checkpoint"].endswith(os.path.join("checkpoints", "6"))
    assert result["parameters"] == sum(leaf.size for leaf in leaves)
    assert result["mean"] == pytest.approx(sum(leaf.sum() for leaf in leaves) / result["parameters"], rel=1e-6)
    assert json.load(open(os.path.join(trained, "eval", "parameters.json"))) == result
