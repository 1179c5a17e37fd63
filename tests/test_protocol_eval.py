"""The paper's evaluation on a miniature release in the released formats: SCUBA (three backgrounds, one
list), Scene-Only and HAT (three splits, composited on the fly), scored per split and averaged, both
table compositions, scene labels from the teacher on the same views; official vs default differ only
where they should."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from configs import common
from devias_jax import evaluators, sharding
from devias_jax import suites as suites_lib
from devias_jax.config_validation import ConfigError, validate
from devias_jax.evaluate import evaluate_suites
from devias_jax.evaluators.suites import load_teacher, open_suite
from devias_jax.predict import make_predict_fn, make_teacher_fn
from devias_jax.data import streams
from devias_jax.methods import build_model
from devias_jax.data import miniature_release as release_helpers
from tests.teacher_helpers import GEOMETRY, teacher_model_settings, trained_teacher
from tests.train_helpers import tiny_train_config

pytestmark = pytest.mark.slow  # its release fixture trains the scene teacher; the paper protocol end to end


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("release"))
    release_helpers.write_release(root, "ucf101")
    return root


def _config(root):
    """The UCF-101 suites and tables on the miniature release (no val list, no Close splits), the tiny
    demo model, and the tiny trained scene teacher (tests/teacher_helpers.py) as config.loss.teacher."""
    teacher = trained_teacher()
    config = tiny_train_config("devias")
    config.data.update(root=root)
    config.model.num_actions = 3
    config.model.num_scenes = teacher.config.model.num_scenes
    suites = common.ucf101_like_suites("unused.txt", "ucf101")
    del suites["val"]
    del suites["hat_close"]  # the miniature release has Rand and Far only
    config.eval.suites = suites
    tables = common.paper_tables().to_dict()
    for table in tables.values():  # no seen suite here: the seen numbers read the Scene-Only suite instead
        table.update(action_seen="scuba_places365", scene_seen="hat_scene_only")
        for key in ("action_unseen", "scene_unseen"):
            table[key] = ",".join(n for n in table[key].split(",") if n != "hat_close")
    config.eval.tables = tables
    config.eval.table = "main"
    config.loss.teacher.update(checkpoint=teacher.workdir, **{k: v for k, v in teacher_model_settings(
        teacher.config).items() if k not in GEOMETRY})
    return config


def _random(model_config, seed):
    model = build_model(model_config, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params


def test_paper_protocol_on_a_miniature_release(release, tmp_path):
    config = _config(release)
    mesh = sharding.make_mesh(1, num_devices=1)
    graphdef, params = _random(config.model, 0)
    # the teacher is loaded from config.loss.teacher (as --mode=eval does) ...
    report = evaluate_suites(config, graphdef, params, mesh, str(tmp_path / "default"))
    teacher = load_teacher(config, mesh)  # ... and again here, to recompute its labels by hand
    suites = report["suites"]
    assert sorted(suites) == ["hat_far", "hat_random", "hat_scene_only", "scuba_places365", "scuba_sinusoid",
                              "scuba_vqgan_clip"]
    # SCUBA: one list, three roots: 6 videos x 2 images each; HAT: 3 splits (6, 6, 5 pairs), each scored on its own
    assert all(suites[f"scuba_{b}"]["videos"] == 12 for b in ("places365", "vqgan_clip", "sinusoid"))
    hat_random = suites["hat_random"]
    assert sorted(hat_random["splits"]) == ["split1", "split2", "split3"]
    assert [hat_random["splits"][s]["videos"] for s in ("split1", "split2", "split3")] == [6, 6, 5]
    for key in ("action_top1", "scene_top1", "scene_top5"):
        assert hat_random[key] == pytest.approx(np.mean([hat_random["splits"][s][key] for s in hat_random["splits"]]))
    # the tables average the suites they name
    main, supplement = report["tables"]["main"], report["tables"]["supplement"]
    assert main["action_unseen"] == pytest.approx(np.mean([suites["scuba_vqgan_clip"]["action_top1"],
                                                           suites["scuba_sinusoid"]["action_top1"]]))
    assert main["scene_unseen_top5"] == pytest.approx(np.mean([suites[n]["scene_top5"] for n in
                                                               ("hat_scene_only", "hat_random", "hat_far")]))
    assert supplement["action_unseen"] == pytest.approx(np.mean([suites[n]["action_top1"] for n in (
        "scuba_places365", "scuba_vqgan_clip", "scuba_sinusoid", "hat_random", "hat_far")]))
    assert report["table"] == "main" and report["action_unseen"] == main["action_unseen"]
    assert os.path.isfile(tmp_path / "default" / "eval" / "report.json")

    # The scene labels of a HAT split are the teacher's argmax of its view-averaged softmax (default) or
    # of its last view (official): recompute them from the same views.
    hat_suite = suites_lib.parse(config)["hat_far"]
    label, source = open_suite(config, hat_suite)[0]
    teacher_fn = make_teacher_fn(teacher[0])
    with streams.eval_batches(config, hat_suite.list, batch_size=8, process_index=0, process_count=1,
                              source=source) as batches:
        batch = next(iter(batches))
    predict = make_predict_fn(graphdef)

    def scene_top1(batch, which):
        labels = jax.device_get(teacher_fn(teacher[1], batch["clips"]))[which][batch["valid"]]
        probs = np.asarray(predict(params, batch["clips"])["scene_probs"])[batch["valid"]]
        assert labels.shape == (6,)
        return 100.0 * np.mean(probs.argmax(-1) == labels)

    assert suites["hat_far"]["splits"]["split1"]["scene_top1"] == pytest.approx(scene_top1(batch, "teacher_mean"))

    # Official: HAT windows random (seeded), scene = last view; SCUBA and Scene-Only views unchanged.
    official = _config(release)
    official.loss.official_compat = True
    official.eval.only = "scuba_places365,hat_scene_only,hat_far"
    report_official = evaluate_suites(official, graphdef, params, mesh, str(tmp_path / "official"), teacher=teacher)
    # SCUBA's views are the same in both modes; the official action top-1 is taken over the action slot's
    # whole unified vector (actions + scenes), ours over the actions only
    scuba_suite = suites_lib.parse(config)["scuba_places365"]
    hits = {False: [], True: []}
    with streams.eval_batches(config, scuba_suite.list, batch_size=8, process_index=0, process_count=1,
                              source=open_suite(config, scuba_suite)[0][1]) as batches:
        for scuba_batch in batches:
            for flag in (False, True):
                probs = np.asarray(make_predict_fn(graphdef, official_action=flag)(params, scuba_batch["clips"])[
                    "action_probs"])[scuba_batch["valid"]]
                assert probs.shape[1] == (3 + config.model.num_scenes if flag else 3)
                hits[flag] += list(probs.argmax(-1) == scuba_batch["action"][scuba_batch["valid"]])
    assert suites["scuba_places365"]["action_top1"] == pytest.approx(100 * np.mean(hits[False]))
    assert report_official["suites"]["scuba_places365"]["action_top1"] == pytest.approx(100 * np.mean(hits[True]))
    official_source = open_suite(official, hat_suite)[0][1]
    assert official_source.official_windows and not source.official_windows
    with streams.eval_batches(official, hat_suite.list, batch_size=8, process_index=0, process_count=1,
                              source=official_source) as batches:
        official_batch = next(iter(batches))
    assert not np.array_equal(official_batch["clips"], batch["clips"])  # other windows
    assert report_official["suites"]["hat_far"]["splits"]["split1"]["scene_top1"] == pytest.approx(
        scene_top1(official_batch, "teacher_last"))


def test_a_hat_suite_that_scores_scenes_needs_teacher_labels(release):
    config = _config(release)
    config.loss.teacher.checkpoint = ""
    with pytest.raises(ValueError, match="loss.teacher.checkpoint"):
        evaluate_suites(config, *_random(config.model, 0), sharding.make_mesh(1, num_devices=1), "/nonexistent")
    config = _config(release)
    config.eval.suites.hat_far.scene_labels = "list"
    with pytest.raises(ConfigError, match="hat_far.*scene_labels='teacher'"):
        validate(config)
    config = _config(release)
    config.eval.tables.main.action_unseen = "scuba_vqgan_clip,nope"
    with pytest.raises(ConfigError, match="tables.main.action_unseen.*unknown \\['nope'\\]"):
        validate(config)


def test_a_second_periodic_evaluation_compiles_nothing(release, tmp_path):
    """The suites evaluator is built once (as the trainer does); its second run over the same suites,
    teacher-labelled HAT splits included, traces and compiles nothing."""

    config = _config(release)
    for name in ("scuba_places365", "scuba_vqgan_clip", "hat_random"):  # one SCUBA suite, HAT Far, Scene-Only
        del config.eval.suites[name]
    config.eval.tables = {}
    config.eval.table = ""
    mesh = sharding.make_mesh(1, num_devices=1)
    graphdef, params = _random(config.model, 0)
    evaluator = evaluators.get("suites")(config, graphdef, mesh, str(tmp_path))
    compiles = []

    def listen(event, duration, **kwargs):
        if event.startswith("/jax/core/compile/"):
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        first = evaluator.run(params, step=1)
        compiled_first = len(compiles)
        second = evaluator.run(params, step=2)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiled_first > 0  # the listener sees compilations at all
    assert compiles[compiled_first:] == []
    assert second["suites"] == first["suites"] and second["step"] == 2
