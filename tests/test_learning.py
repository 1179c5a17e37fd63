"""DEVIAS's slot path learns the motions where a plain ViT does (the demo's model, trained from scratch).

The in-memory learning probe (scripts/experiments/learning_probe.py: the trainer's own step, no video
files) trains `action_vit` and DEVIAS for the same number of steps on generated data whose scene is
independent of the action (P(home scene) = 1/6), and scores unseen action top-1 (60 clips, chance 16.7).
The demo's model with 4-frame clips (one tubelet in time) keeps it affordable. The claims:
- the plain ViT learns the motion: >= 50% (three times chance) on training seed 0 or, where seed 0
  stays under it, on seed 1;
- DEVIAS reaches 80% of the best of those plain-ViT runs (the learning issue's bar) on at least 2 of 3
  training seeds (0, 1, 2, run in that order and stopped once the outcome is decided):
  - with scene mixing off, on 2,000 steps, with per-clip matching and the signed cosine term;
  - with scene mixing on every clip, onto a still frame of the background clip (the demo's mixing,
    `augment.scene_mix_background=still`, and the demo's fixed slot roles and |cos|), on 4,000 steps.
Why seeds, not one run: when a model takes off depends on the seed and on the machine's floating-point
arithmetic. The same code and seed reached 100.0% (DEVIAS with mixing) where this check was written and
48.3% (still taking off) on another machine of the same kind; the plain ViT's 2,000-step run reached
83.3% on one arithmetic and 53.3% on another. Every run behind these rules, on two arithmetics, is in
docs/experiments/learning_check_seeds.md. The data is the generator's default (golden-ratio scene hues).
"""

import functools

import pytest

from scripts.experiments import learning_probe as probe

DATA = "train_per_action=300,clutter=0.0,motion=0.3,correlation=0.1667"
GEOMETRY = ["model.num_frames=4"]  # the demo recipe otherwise (tubelet 4, slots N(0, 0.02^2))
SEEDS = (0, 1, 2)
NEEDED = 2  # of the SEEDS


@functools.lru_cache(maxsize=None)
def _data():
    spec = probe.spec_from_text(DATA)
    geometry = probe.method_config("action_vit", GEOMETRY, 0, spec.num_actions, spec.num_scenes)
    return spec, probe.render_split(spec, "train"), probe.render_evals(spec, geometry)


def _unseen_action(method: str, overrides: list[str], steps: int, seed: int = 0) -> float:
    spec, train, evals = _data()
    records = probe.run_method(method, spec, train, {"val_unseen": evals["val_unseen"]}, steps=steps,
                               eval_every=steps, overrides=GEOMETRY + overrides, seed=seed, label=DATA,
                               log=lambda line: None)
    return records[-1]["val_unseen_action"]


def seeds_reaching(bar: float, run, seeds=SEEDS, needed: int = NEEDED) -> dict[int, float]:
    """{seed: score} of runs in seed order, stopped as soon as `needed` of `seeds` are known to reach `bar`
    or known not to."""
    scores = {}
    for seed in seeds:
        scores[seed] = run(seed)
        reached = sum(score >= bar for score in scores.values())
        if reached >= needed or reached + len(seeds) - len(scores) < needed:
            break
    return scores


def plain_vit_reference(run, seeds=(0, 1), learnt: float = 50.0) -> dict[int, float]:
    """{seed: score} of the plain ViT: seed 0, and the next seed only while every run stays under `learnt`."""
    scores = {}
    for seed in seeds:
        scores[seed] = run(seed)
        if scores[seed] >= learnt:
            break
    return scores


def _check(overrides: list[str], steps: int, what: str):
    plain_runs = plain_vit_reference(lambda seed: _unseen_action("action_vit", [], steps, seed))
    plain = max(plain_runs.values())
    assert plain >= 50.0, (f"action_vit reached {plain_runs} % unseen action by seed: the data is not learnable in "
                           f"{steps} steps")
    bar = 0.8 * plain
    scores = seeds_reaching(bar, lambda seed: _unseen_action("devias", overrides, steps, seed))
    reached = [seed for seed, score in scores.items() if score >= bar]
    assert len(reached) >= NEEDED, (
        f"DEVIAS ({what}) reached 80% of action_vit's {plain:.1f}% unseen action (>= {bar:.1f}) in {steps} steps on "
        f"{len(reached)} of the seeds {sorted(scores)} (unseen action by seed: "
        f"{ {s: round(v, 1) for s, v in scores.items()} }); {NEEDED} of {len(SEEDS)} are needed")


def test_seed_rules_stop_once_the_outcome_is_decided():
    calls = []

    def run(seed):
        calls.append(seed)
        return {0: 90.0, 1: 95.0, 2: 10.0}[seed]

    assert seeds_reaching(80.0, run) == {0: 90.0, 1: 95.0} and calls == [0, 1]
    calls.clear()
    assert seeds_reaching(80.0, lambda s: run(s) if s != 0 else 10.0) == {0: 10.0, 1: 95.0, 2: 10.0}
    assert seeds_reaching(80.0, lambda s: 10.0) == {0: 10.0, 1: 10.0}  # 2 of 3 can no longer be reached
    assert plain_vit_reference(lambda s: 60.0) == {0: 60.0}
    assert plain_vit_reference(lambda s: {0: 40.0, 1: 70.0}[s]) == {0: 40.0, 1: 70.0}
    assert plain_vit_reference(lambda s: 30.0) == {0: 30.0, 1: 30.0}


@pytest.mark.slow  # thousands of training steps
def test_devias_without_scene_mixing_learns_the_motions_like_a_plain_vit():
    _check(["augment.scene_mix_prob=0.0", "loss.matching='exact'", "loss.cos_mode='signed'"], 2000,
           "scene mix off, per-clip matching, signed cosine")


@pytest.mark.slow  # thousands of training steps
def test_devias_with_still_background_scene_mixing_learns_the_motions_like_a_plain_vit():
    _check(["augment.scene_mix_prob=1.0", "augment.scene_mix_background='still'"], 4000,
           "scene mix on every clip, still backgrounds")
