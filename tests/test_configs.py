"""Every recipe builds, arguments parse, bad keys/values fail naming the key, main.py --help works."""

import glob
import os
import subprocess
import sys

import pytest

from devias_jax import config_validation
from devias_jax.config_loading import command_line_problems, load_config
from tests.conftest import ROOT

RECIPES = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not p.endswith(("common.py", "defaults.py", "__init__.py")))


def test_there_are_recipes():
    assert {"configs/demo.py", "configs/ucf101.py", "configs/kinetics400.py", "configs/hvu.py"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("arg", ["", "smoke"])
def test_recipe_builds_validates_and_is_locked(recipe, arg):
    config = load_config(os.path.join(ROOT, recipe) + (f":{arg}" if arg else ""))
    config_validation.validate(config)
    with pytest.raises(AttributeError):
        config.model.not_a_field = 1
    durations = [k for k in config.get("train", {}) if "epoch" in k or "step" in k]
    assert all(k.endswith(("_epochs", "_steps")) for k in durations), durations


def test_parse_arg():
    from configs.common import parse_arg

    assert parse_arg("method=vit,variant=L,smoke") == {"method": "vit", "variant": "L", "smoke": True}
    assert parse_arg(None)["smoke"] is False
    with pytest.raises(ValueError, match="'colour'"):
        parse_arg("colour=red")
    with pytest.raises(ValueError, match="flag"):
        parse_arg("smoke=maybe")


def test_bad_values_name_the_key():
    config = load_config(os.path.join(ROOT, "configs/ucf101.py"))
    config.model.dtype = "float8"
    with pytest.raises(config_validation.ConfigError, match="config.model.dtype"):
        config_validation.validate(config)
    config = load_config(os.path.join(ROOT, "configs/ucf101.py:smoke"))
    config.model.num_heads = 5
    with pytest.raises(config_validation.ConfigError, match="config.model.embed_dim"):
        config_validation.validate(config)


def test_unknown_override_key_is_named():
    problems = command_line_problems(["--config=configs/ucf101.py", "--config.model.colour=1"])
    assert problems and "config.model.colour" in problems[0] and "embed_dim" in problems[0]
    assert command_line_problems(["--config=configs/ucf101.py", "--config.model.depth=3"]) == []


def _main(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_main_help():
    result = _main("--help")
    # absl exits 1 after printing help; what matters is that the flags are documented.
    assert "--workdir" in result.stdout and "--mode" in result.stdout and "--config" in result.stdout


def test_main_rejects_unknown_key_and_bad_value(tmp_path):
    result = _main("--config=configs/demo.py:smoke", f"--workdir={tmp_path}", "--config.model.colour=red")
    assert result.returncode != 0 and "config.model.colour" in result.stderr
    result = _main("--config=configs/demo.py:smoke", f"--workdir={tmp_path}", "--config.model.pooling=max")
    assert result.returncode != 0 and "config.model.pooling" in result.stderr


def _with_suites(**suites):
    config = load_config(os.path.join(ROOT, "configs/demo.py"))
    config.unlock()
    config.eval.suites = suites
    return config


def test_suite_tasks_as_tuple_or_string_and_every_bad_field_named():
    from devias_jax import suites

    config = _with_suites(a={"list": "a.txt", "tasks": ("action", "scene"), "group": "seen"},
                          b={"list": "b.txt", "tasks": "scene", "group": "unseen"})
    config_validation.validate(config)
    parsed = suites.parse(config)
    assert parsed["a"].tasks == ("action", "scene") and parsed["b"].tasks == ("scene",)
    for entry, match in [({"list": "a.txt", "tasks": ("action", "motion"), "group": "seen"},
                          r"config.eval.suites.x.tasks=\('action', 'motion'\); expected .*'action', 'scene'"),
                         ({"list": "a.txt", "tasks": "", "group": "seen"}, "config.eval.suites.x.tasks=''"),
                         ({"list": "a.txt", "tasks": 3, "group": "seen"}, "config.eval.suites.x.tasks=3"),
                         ({"list": "a.txt", "tasks": "action,action", "group": "seen"}, "distinct"),
                         ({"list": "a.txt", "tasks": "action", "group": "both"},
                          r"config.eval.suites.x.group='both'; expected one of \['seen', 'unseen'\]"),
                         ({"list": "", "tasks": "action", "group": "seen"}, "config.eval.suites.x.list=''"),
                         ({"list": "a.txt", "tasks": "action"}, r"missing \['group'\]"),
                         ({"list": "a.txt", "tasks": "action", "group": "seen", "weight": 2}, r"unknown \['weight'\]"),
                         ("a.txt", "config.eval.suites.x='a.txt'; expected a dict")]:
        with pytest.raises(config_validation.ConfigError, match=match):
            config_validation.validate(_with_suites(x=entry))
    config = _with_suites(a={"list": "a.txt", "tasks": "action", "group": "seen"})
    config.eval.only = "a,nope"
    with pytest.raises(config_validation.ConfigError, match=r"unknown suites \['nope'\]"):
        config_validation.validate(config)


def test_data_fields_are_checked_by_name_and_type():
    config = load_config(os.path.join(ROOT, "configs/demo.py"))
    config.unlock()
    config.data.num_frames = 8  # the clip geometry is the model's: no data-side knob
    with pytest.raises(config_validation.ConfigError, match=r"config.data.num_frames is not a known field"):
        config_validation.validate(config)
    config = load_config(os.path.join(ROOT, "configs/demo.py"))
    config.unlock()
    del config.data["shuffle"]
    config.data.shuffle = "yes"
    with pytest.raises(config_validation.ConfigError, match=r"config.data.shuffle='yes'; expected True/False"):
        config_validation.validate(config)
    config = load_config(os.path.join(ROOT, "configs/demo.py"))
    config.unlock()
    config.sharding.param_rules = [("(unclosed", "fsdp")]
    with pytest.raises(config_validation.ConfigError, match=r"param_rules\[0\].*does not compile"):
        config_validation.validate(config)


def test_hvu_test_views_are_the_papers_unless_the_official_switch_is_on():
    config = load_config(os.path.join(ROOT, "configs/hvu.py:method=devias"))
    assert (config.data.test_temporal_views, config.data.test_spatial_views) == (2, 3)  # paper: 2 x 3
    config.loss.official_compat = True
    assert (config.data.test_temporal_views, config.data.test_spatial_views) == (1, 1)  # their centre view
    config.data.test_spatial_views = 3  # set on its own: kept, and the switch is left as it was
    config.loss.official_compat = False
    assert (config.data.test_temporal_views, config.data.test_spatial_views) == (2, 3)
    assert config.loss.official_compat is False


def test_a_duration_is_given_in_one_unit():
    config = load_config(os.path.join(ROOT, "configs/ucf101.py"), {"train.num_steps": 500})  # recipe: 100 epochs
    with pytest.raises(config_validation.ConfigError, match="num_epochs=100 and config.train.num_steps=500"):
        config_validation.validate(config)
    config = load_config(os.path.join(ROOT, "configs/ucf101.py"), {"train.num_steps": 500, "train.num_epochs": -1})
    config_validation.validate(config)  # steps instead of epochs
    config = load_config(os.path.join(ROOT, "configs/demo.py"), {"optim.warmup_steps": 10})
    with pytest.raises(config_validation.ConfigError, match="optim.warmup_epochs=2"):
        config_validation.validate(config)
