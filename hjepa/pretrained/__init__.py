"""Small pretrained runs shipped with the package, to plan without training first.

Each entry is a run directory (`config.json`, `metrics.jsonl`, the last orbax checkpoint) that
`hjepa.train.load_run` reads, with the command that reproduces it and the planner settings it
was measured with (`hjepa plan --pretrained NAME` uses them unless flags override them).

Each run's figure lives beside it in `evaluation.json`, written by
`python -m benchmarks.pretrained_runs` from `hjepa plan --pretrained NAME` on the `test`
start/goal pairs (`hjepa.splits`), with its provenance: `describe` quotes it, `for_task` ranks
a task's runs by it, and the tests derive their quality floors from it.
"""

from __future__ import annotations

import dataclasses
import json
import os

from hjepa.configs import PlannerConfig

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A shipped run: its task, what it is, how to reproduce it, how it plans."""

    name: str
    task: str
    description: str
    reproduce: str
    plan: PlannerConfig  # how it was measured (what `hjepa plan --pretrained NAME` uses)


PRETRAINED = {
    "reacher": Pretrained(
        name="reacher",
        task="reacher",
        description=("flat JEPA on reacher states (latent 32, 2x128 MLPs), 2000 reward-free "
                     "episodes x 50 steps, 3000 training steps"),
        reproduce="hjepa bench --profile quick --work W  (the run: W/runs/reacher_state_seed0)",
        plan=PlannerConfig().replace(num_samples=128, iterations=3, horizon=16, noise_std=0.3,
                                     noise_decay=0.6, temperature=0.03),
    ),
    "two_rooms": Pretrained(
        name="two_rooms",
        task="two_rooms",
        description=("flat JEPA on two_rooms states (latent 32, 2x128 MLPs), 1000 reward-free "
                     "episodes x 100 steps, 3000 training steps"),
        reproduce="hjepa bench --profile quick --work W  (the run: W/runs/two_rooms_state_seed0)",
        plan=PlannerConfig().replace(num_samples=128, iterations=3, horizon=24, noise_std=0.6,
                                     noise_decay=0.6, temperature=0.03),
    ),
    "two_rooms_pixels": Pretrained(
        name="two_rooms_pixels",
        task="two_rooms",
        description=("flat JEPA on two_rooms 32x32 pixels (conv encoder 32-64-64-64, latent 32, "
                     "2x256 predictor), 1500 reward-free episodes x 100 steps, 3000 training "
                     "steps (batch 64) and its critic (learned steps to go)"),
        reproduce=("python -m benchmarks.task_suite --only two_rooms/pixels --work W  "
                   "(the run and its critic: W/runs/two_rooms_pixels)"),
        plan=PlannerConfig().replace(num_samples=128, iterations=4, horizon=16, noise_std=0.6,
                                     noise_decay=0.5, temperature=0.03, critic=True),
    ),
    "reacher_pixels": Pretrained(
        name="reacher_pixels",
        task="reacher",
        description=("flat JEPA on reacher 32x32 pixels, two frames encoded apart (conv encoder "
                     "32-64-64-64, latent 32 = [pose, pose difference], 2x256 predictor, "
                     "inverse-dynamics head of weight 10, targets held fixed), 2000 "
                     "reach-and-hold episodes x 50 steps, 2200 training steps (batch 64) and its "
                     "critic"),
        reproduce=("python -m benchmarks.task_suite --only reacher/pixels --work W  "
                   "(the run and its critic: W/runs/reacher_pixels)"),
        plan=PlannerConfig().replace(num_samples=256, iterations=4, horizon=16, noise_std=0.3,
                                     noise_decay=0.5, temperature=0.01, critic=True),
    ),
    "umaze_h2": Pretrained(
        name="umaze_h2",
        task="umaze",
        description=("two-level JEPA on umaze states (latent 16, 2x128 MLPs, macro-actions of 8 "
                     "steps in 2 dimensions), 2000 reward-free episodes x 200 steps, 3000 "
                     "training steps"),
        reproduce="python -m benchmarks.hierarchy --tasks umaze --work W  (the run: W/runs/umaze)",
        plan=PlannerConfig().replace(num_samples=128, iterations=4, horizon=8, noise_std=0.6,
                                     noise_decay=0.5, temperature=0.03, high_horizon=8,
                                     snap_radius=1.0),
    ),
}


def path(name: str) -> str:
    """The run directory of the pretrained model `name`."""
    if name not in PRETRAINED:
        raise ValueError(f"pretrained: expected one of {sorted(PRETRAINED)}, got {name!r}")
    return os.path.join(HERE, name)


def evaluation(name: str) -> dict | None:
    """The run's measured figure on the `test` pairs (`evaluation.json`), None if unmeasured.

    Keys include "success_rate", "successes", "episodes", "success_ci95", "split", "seed",
    "mean_final_distance" and "provenance" (commit, command, machine, versions)."""
    try:
        with open(os.path.join(path(name), "evaluation.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def planner_text(plan: PlannerConfig) -> str:
    """How a run plans, in words, from its `PlannerConfig` (e.g. "MPPI 128 x H16 x 3")."""
    options = plan.kwargs()
    text = (f"{plan.planner.upper()} {options.get('num_samples', '?')} x H{plan.horizon} x "
            f"{options.get('iterations', '?')}")
    if plan.snap_radius is not None:
        text += f" (subgoals within {plan.snap_radius} of the goal snap to it)"
    if plan.critic:
        text += " on the critic"
    return f"{text} at temperature {options['temperature']}" if "temperature" in options \
        else text


def describe(name: str) -> str:
    """What the run is, how it plans, and its measured `test`-pair figure from its
    `evaluation.json`."""
    entry = PRETRAINED[name]
    measured = evaluation(name)
    what = f"{entry.description}; {planner_text(entry.plan)}"
    if measured is None:
        return f"{what}; not measured on the test pairs"
    from hjepa import sysinfo

    low, high = measured["success_ci95"]
    return (f"{what}: {100 * measured['success_rate']:.1f}% "
            f"({100 * low:.0f}-{100 * high:.0f}) of {measured['episodes']} {measured['split']} "
            f"pairs (seed {measured['seed']}) on "
            f"{sysinfo.describe(measured['provenance']['hardware'])}")


def for_task(task: str | None) -> str:
    """The name of the best measured run shipped for `task` (highest `test` success rate;
    unmeasured runs last, then the order listed)."""
    names = [name for name, entry in PRETRAINED.items() if entry.task == task]
    if not names:
        shipped = ", ".join(f"{name} ({entry.task})" for name, entry in PRETRAINED.items())
        raise ValueError(f"--pretrained: no run is shipped for task {task!r}; shipped: "
                         f"{shipped}; or pass --pretrained NAME")

    def rate(name):
        measured = evaluation(name)
        return -1.0 if measured is None else measured["success_rate"]

    return max(names, key=rate)  # max keeps the first listed among equals
