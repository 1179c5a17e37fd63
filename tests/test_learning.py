"""DEVIAS's slot path learns the motions where a plain ViT does (the demo's model, trained from scratch).

The in-memory learning probe (devias_jax/learning_probe.py: the trainer's own step, no video files)
trains `action_vit` and DEVIAS for the same number of steps on generated data whose scene is independent
of the action (P(home scene) = 1/6), and scores unseen action top-1 (60 clips, chance 16.7). The demo's
model with 4-frame clips (one tubelet in time) keeps it affordable. The plain ViT must learn the motion
(>= 50, three times chance); DEVIAS must reach 80% of its accuracy (the bar the learning issue set):
- with scene mixing off, on 2,000 steps, with per-clip slot matching and the signed cosine term (the
  recipe before 2026-12-02; measured: action_vit 90.0, DEVIAS 96.7). With the demo's fixed roles and
  |cos| and no mixing DEVIAS learned later (38.3 at step 2,000): that pair was chosen for mixed training;
- with scene mixing on every clip, onto a still frame of the background clip
  (`augment.scene_mix_background=still`, the demo's setting), on 4,000 steps (measured with the demo's
  recipe: action_vit 88.3, DEVIAS 100.0). Mixing delays the start of motion learning, so it needs the
  longer schedule; with the official mixing (the background clip moving, its own actor included) DEVIAS
  stopped at 65.0 there (README, "What scene mixing costs DEVIAS, across seeds").
The data is the generator's default (golden-ratio scene hues). The demo's recipe fixes the slot roles
and uses the |cos| slot term since 2026-12-02; with per-clip matching and the signed term (the recipe
before) the still-mixing DEVIAS reached 96.7 here but never took off on the even-hue data of seed 0
(21.7; README, "Slot roles, the cosine term and the take-off"). This test pins the measured dataset,
not a take-off on every dataset.
The two checks are separate tests so that parallel workers can take one each (about 3 and 6 minutes of
one CPU core pair). Before `model.slot_init_scale` DEVIAS stayed at chance here while action_vit learned.
"""

import functools

from devias_jax import learning_probe as probe

DATA = "train_per_action=300,clutter=0.0,motion=0.3,correlation=0.1667"
GEOMETRY = ["model.num_frames=4"]  # the demo recipe otherwise (tubelet 4, slots N(0, 0.02^2))


@functools.lru_cache(maxsize=None)
def _data():
    spec = probe.spec_from_text(DATA)
    geometry = probe.method_config("action_vit", GEOMETRY, 0, spec.num_actions, spec.num_scenes)
    return spec, probe.render_split(spec, "train"), probe.render_evals(spec, geometry)


def _unseen_action(method: str, overrides: list[str], steps: int) -> float:
    spec, train, evals = _data()
    records = probe.run_method(method, spec, train, {"val_unseen": evals["val_unseen"]}, steps=steps,
                               eval_every=steps, overrides=GEOMETRY + overrides, seed=0, label=DATA,
                               log=lambda line: None)
    return records[-1]["val_unseen_action"]


def _check(overrides: list[str], steps: int, what: str):
    plain = _unseen_action("action_vit", [], steps)
    assert plain >= 50.0, f"action_vit reached {plain:.1f}% unseen action: the data is not learnable in {steps} steps"
    devias = _unseen_action("devias", overrides, steps)
    assert devias >= 0.8 * plain, (f"DEVIAS ({what}) reached {devias:.1f}% unseen action in {steps} steps, below "
                                   f"80% of action_vit's {plain:.1f}%")


def test_devias_without_scene_mixing_learns_the_motions_like_a_plain_vit():
    _check(["augment.scene_mix_prob=0.0", "loss.matching='exact'", "loss.cos_mode='signed'"], 2000,
           "scene mix off, per-clip matching, signed cosine")


def test_devias_with_still_background_scene_mixing_learns_the_motions_like_a_plain_vit():
    _check(["augment.scene_mix_prob=1.0", "augment.scene_mix_background='still'"], 4000,
           "scene mix on every clip, still backgrounds")
