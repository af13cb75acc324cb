"""Guards of learned planning quality: each fails when a shipped model or the demo-sized path
plans worse than it measurably did.

Every shipped run (`hjepa.pretrained`) plans a small fixed set of `test` start/goal pairs with
its own planner settings, through `hjepa plan` as a user runs it, and must reach a floor
derived from its measured figure (`evaluation.json`, 64 `test` pairs, written by
`python -m benchmarks.pretrained_runs`): the floor is the 1% quantile of the successes of a
model whose rate is the lower end of the measured 95% interval (`hjepa.stats.success_floor`),
so a model as good as measured fails it with probability < 1%, and a broken cost, predictor
or encoder (near the random-action rate) fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jax
import pytest
from cli_helpers import run_cli

from hjepa import evaluate, pretrained, splits, stats, tasks

# Episodes each guard plans: enough that the floor sits well above the random-action rate,
# few enough that the guards stay cheap on 2 CPU cores.
GUARD_EPISODES = {"reacher": 16, "two_rooms": 16, "two_rooms_pixels": 6, "reacher_pixels": 6,
                  "umaze_h2": 8}


def guard_floor(name: str) -> tuple[int, int, dict]:
    """(episodes, floor, measured) of the shipped run `name`."""
    measured = pretrained.evaluation(name)
    assert measured is not None, f"{name}: no evaluation.json; run benchmarks.pretrained_runs"
    assert measured["split"] == "test" and measured["seed"] == splits.seed("test")
    episodes = GUARD_EPISODES[name]
    return episodes, stats.success_floor(measured["successes"], measured["episodes"],
                                         episodes), measured


def test_every_shipped_run_has_a_guard():
    assert set(GUARD_EPISODES) == set(pretrained.PRETRAINED)


@pytest.mark.parametrize("name", [n for n in GUARD_EPISODES if n != "reacher"])
def test_a_shipped_run_keeps_its_planning_quality(name, capsys):
    episodes, floor, measured = guard_floor(name)
    assert floor >= 1, (name, floor)  # a guard that can fail (random actions reach ~0%)
    code, out, err = run_cli(["plan", "--pretrained", name, "--episodes", str(episodes),
                              "--split", "test", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    successes = round(summary["success_rate"] * episodes)
    assert summary["split"] == "test" and summary["episodes"] == episodes
    assert successes >= floor, (
        f"{name}: {successes}/{episodes} test pairs reached, floor {floor} (measured "
        f"{measured['successes']}/{measured['episodes']})")


def test_the_console_script_plans_the_shipped_reacher_run(tmp_path):
    """`hjepa` itself (the console script), run outside the source tree, so that it plans
    with the installed package and the runs shipped in it; the reacher run's guard."""
    script = shutil.which("hjepa", path=os.path.dirname(sys.executable)) or shutil.which("hjepa")
    assert script is not None, "the hjepa console script is not installed"
    episodes, floor, measured = guard_floor("reacher")
    assert floor >= 1
    proc = subprocess.run([script, "plan", "--pretrained", "reacher", "--episodes",
                           str(episodes), "--json"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["pretrained"] == "reacher" and summary["split"] == "test"
    successes = round(summary["success_rate"] * episodes)
    assert successes >= floor, (successes, floor, measured["successes"])


def test_the_floor_is_the_binomial_quantile_of_the_measured_rate():
    # 58/64 measured: p_low = 0.8102 (Wilson); P(X <= 8) = 0.0043 and P(X <= 9) = 0.0203
    # for X ~ Binomial(16, 0.8102): at most 1% of such models fall below 9.
    low = stats.wilson(58, 64)[0]
    assert low == pytest.approx(0.81017, abs=1e-4)
    assert stats.binomial_cdf(8, 16, low) <= 0.01 < stats.binomial_cdf(9, 16, low)
    assert stats.success_floor(58, 64, 16) == 9
    assert stats.success_floor(0, 64, 16) == 0  # nothing measured, nothing guarded
    assert stats.binomial_cdf(16, 16, 0.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="successes <= n"):
        stats.success_floor(65, 64, 16)


def test_random_actions_move_and_record_the_distance_to_the_goal():
    task = tasks.make("reacher")
    result = evaluate.random_actions(task, jax.random.key(3), num_episodes=4, num_steps=5)
    assert result.distances.shape == (4, 5) and result.num_steps == 5
    # the last recorded distance is the final one, and the arm moved between steps
    assert result.final_distance == pytest.approx(result.distances[:, -1], abs=1e-6)
    assert (abs(result.distances[:, 0] - result.distances[:, -1]) > 1e-4).all()
