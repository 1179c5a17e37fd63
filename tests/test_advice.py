"""Advice the project gives stays true: every command line it prints or documents, and every config key
its messages name, parse against the recipes as they are (a hint naming a removed key fails here)."""

import ast
import glob
import os
import re
import shlex

import pytest

from devias_jax.config_loading import command_line_problems, load_config
from devias_jax.data import synthetic
from tests.conftest import ROOT

RECIPES = ("demo.py", "ucf101.py", "kinetics400.py", "hvu.py", "places365_scene.py", "downstream.py")
# `config.<key>` in code and docs; the first part must be a section of the config (so 'config.json' or
# 'config.py' are not keys), a '{' ends the key (f-string placeholders such as suites.{name})
KEY = re.compile(r"(?<![\w.\-/])(--)?config\.([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)")


def _recipes() -> list:
    return [load_config(os.path.join(ROOT, "configs", name)) for name in RECIPES]


def _resolves(configs: list, dotted: str) -> bool:
    """`dotted` names a field of at least one recipe (below a dict of user-named entries, such as
    eval.suites, any name is allowed)."""
    for config in configs:
        node, ok = config, True
        for part in dotted.split("."):
            if not hasattr(node, "keys"):
                break  # a value: what follows is not a key (e.g. a method call in prose)
            if part not in node:
                ok = False
                break
            node = node[part]
        if ok:
            return True
    return False


def _named_keys(text: str, sections: set[str]) -> set[str]:
    return {key for _, key in KEY.findall(text) if key.split(".")[0] in sections}


def _string_constants(path: str) -> str:
    """Every string the file's code holds, f-strings with their placeholders as '{'."""
    parts = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts.append("".join(v.value if isinstance(v, ast.Constant) else "{" for v in node.values))
    return "\n".join(parts)


def _commands(text: str) -> list[list[str]]:
    """`python main.py ...` command lines of a markdown text (continuations joined), as argv lists;
    lines with shell variables, elisions or placeholders (`method=M`, `--workdir=W`) are left out: they are
    templates, not commands."""
    text = text.replace("\\\n", " ")
    found = []
    for match in re.finditer(r"python main\.py ([^\n`|\"]*)", text):
        line = match.group(1).split(" #")[0].split(";")[0].split("&&")[0].strip()
        if "$" in line or "..." in line or "<" in line or re.search(r"[=:,][A-Z][A-Z0-9_]*(?=[\s,]|$)", line):
            continue
        found.append(shlex.split(line))
    return found


def test_key_finder_reads_flags_and_prose():
    sections = {"data", "model"}
    assert _named_keys("use --config.data.root=x or config.model.num_actions; see config.json",
                       sections) == {"data.root", "model.num_actions"}
    assert _named_keys("config.eval.x", sections) == set()
    configs = _recipes()
    assert _resolves(configs, "model.num_actions") and not _resolves(configs, "data.num_actions")
    assert _resolves(configs, "eval.suites.val_unseen")  # under a dict of named entries


def test_config_keys_named_in_code_exist():
    configs = _recipes()
    sections = set().union(*(set(config.keys()) for config in configs))
    files = [os.path.join(ROOT, "main.py")] + sorted(
        glob.glob(os.path.join(ROOT, "devias_jax", "**", "*.py"), recursive=True)
        + glob.glob(os.path.join(ROOT, "scripts", "**", "*.py"), recursive=True)
        + glob.glob(os.path.join(ROOT, "configs", "*.py")))
    missing = {}
    for path in files:
        unknown = sorted(k for k in _named_keys(_string_constants(path), sections) if not _resolves(configs, k))
        if unknown:
            missing[os.path.relpath(path, ROOT)] = unknown
    assert missing == {}


def test_config_keys_and_commands_in_the_docs_exist(monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands name their recipes relative to the repository
    configs = _recipes()
    sections = set().union(*(set(config.keys()) for config in configs))
    documents = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                                     recursive=True))
    documents += sorted(glob.glob(os.path.join(ROOT, "configs", "*.md")) + glob.glob(
        os.path.join(ROOT, "scripts", "**", "*.md"), recursive=True))
    problems, commands = {}, 0
    for path in documents:
        text = open(path, encoding="utf-8").read()
        found = [f"unknown key {k}" for k in sorted(_named_keys(text, sections)) if not _resolves(configs, k)]
        for argv in _commands(text):
            commands += 1
            found += command_line_problems(argv)
        if found:
            problems[os.path.relpath(path, ROOT)] = found
    assert commands >= 5  # the commands are found (a broken finder would check nothing)
    assert problems == {}


def test_the_generator_prints_a_command_that_trains(tmp_path, monkeypatch):
    spec = synthetic.Spec(num_actions=2, num_scenes=3)
    argv = shlex.split(synthetic.train_command(str(tmp_path), spec))
    assert argv[:2] == ["python", "main.py"]
    monkeypatch.chdir(ROOT)
    assert command_line_problems(argv[2:]) == []
    overrides = {a.split("=", 1)[0][len("--config."):]: a.split("=", 1)[1] for a in argv if a.startswith("--config.")}
    assert overrides["model.num_actions"] == "2" and overrides["model.num_scenes"] == "3"
    assert overrides["data.root"] == str(tmp_path)


@pytest.mark.parametrize("bad", ["--config.data.num_actions=6", "--config.model.nope=1"])
def test_a_stale_hint_is_caught(bad):
    problems = command_line_problems([f"--config={os.path.join(ROOT, 'configs', 'demo.py')}", bad])
    assert problems and "unknown config key" in problems[0]

