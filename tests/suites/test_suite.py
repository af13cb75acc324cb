"""benchmarks.suite: budgets and call counts, selection, reports, and a tiny profile end to end
(rows written as they finish, never overwritten without asking, resumed after an interruption).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from benchmarks import suite
from benchmarks.suite import Budget


def test_budget_scaling_keeps_elites_below_samples():
    cem = Budget.of("cem", 16, num_samples=128, num_elites=16, iterations=3, noise_std=0.3)
    small = cem.scaled(0.25)
    assert small.kwargs["num_samples"] == 32 and small.kwargs["num_elites"] == 4
    assert small.kwargs["noise_std"] == 0.3 and small.horizon == 16
    assert cem.scaled(1.0) is cem
    tiny = cem.scaled(0.001)  # never below 2 samples, elites never above samples
    assert tiny.kwargs["num_samples"] == 2 and tiny.kwargs["num_elites"] == 2


@pytest.mark.parametrize("budget, calls", [
    (Budget.of("mppi", 16, num_samples=128, iterations=3), 128 * 3 * 16),
    (Budget.of("cem", 24, num_samples=64, num_elites=8, iterations=2), 64 * 2 * 24),
    (Budget.of("gd", 12, num_candidates=8, iterations=10), 8 * 10 * 12),
    (Budget.of("beam", 16, beam_width=8, branching=4, iterations=2), 8 * 4 * 2 * 16),
    # two levels of MPPI (macro H2, primitive H4) and the subgoal's 2-step rollout
    (Budget.of("hierarchical", 4, num_samples=8, iterations=2, high_horizon=2,
               high_noise_std=1.0, snap_radius=0.5), 8 * 2 * 2 + 8 * 2 * 4 + 2),
])
def test_calls_per_step(budget, calls):
    assert budget.calls_per_step() == calls


def test_select_names_the_unknown_entry():
    with pytest.raises(ValueError, match="--planners.*nope"):
        suite.select(suite.QUICK, planner_names="mppi,nope")
    with pytest.raises(ValueError, match="--only.*pusher"):
        suite.select(suite.QUICK, only="pusher")
    with pytest.raises(ValueError, match="--models.*nope"):
        suite.select(suite.QUICK, models="learned,nope")
    picked = suite.select(suite.QUICK, only="two_rooms", planner_names="gd", models="oracle")
    assert [t.task for t in picked.tasks] == ["two_rooms"] and picked.models == ("oracle",)
    assert [b.planner for b in picked.tasks[0].learned] == ["gd"]


def _fake_row(model: str, planner: str, rate: float, scale: float = 1.0) -> dict:
    return {"task": "reacher", "obs": "state" if model == "learned" else "-", "model": model,
            "planner": planner, "budget_scale": scale, "budget_text": "8 samples x 2 it, H4",
            "seed": 0, "episodes": 10, "success_rate": rate, "success_ci95": [0.1, 0.9],
            "mean_final_distance": 0.05, "ms_per_env_step": 1.5, "calls_per_step": 64,
            "train_seconds": 3.0 if model == "learned" else None, "dataset_episodes": 8,
            "dataset_episode_length": 10, "trace": [3.0, 2.0, 1.5]}


def test_markdown_keeps_quoted_results_apart():
    results = {"profile": {"name": "x", "episodes": 10, "oracle_episodes": 10,
                           "eval_seed": 1},
               "hardware": {"versions": {"jax": "0"}}, "machine": "a machine",
               "sessions": [{"wall_seconds": 12.0, "load_average_start": [1.0, 1.0, 1.0]}],
               "complete": True,
               "rows": [_fake_row("learned", "mppi", 0.5), _fake_row("oracle", "gd", 1.0),
                        _fake_row("learned", "mppi", 0.2, scale=0.5)]}
    text = suite.markdown(results)
    measured, quoted = text.split("## Published results (quoted, not measured here)")
    assert "## Measured" in measured
    for q in suite.QUOTED:  # every quoted row, only in the quoted section, with its source
        assert q["method"] not in measured
        assert q["source"] in quoted
    assert "| reacher | state | learned | mppi |" in measured
    assert "50.0% (10-90) of 10" in measured and "100.0% (10-90) of 10" in measured
    assert "Smaller budgets" in measured  # the 0.5 row is listed apart from the main rows
    hwm = next(q for q in suite.QUOTED if q["method"].startswith("HWM"))
    assert hwm["success"] == "70% vs 0%"


def test_plots_are_written(tmp_path):
    results = {"profile": {"name": "x"}, "machine": "m",
               "rows": [_fake_row("learned", "mppi", 0.5), _fake_row("learned", "mppi", 0.2,
                                                                      scale=0.5)]}
    suite.budget_plot(results, str(tmp_path / "b.png"))
    suite.trace_plot(results, str(tmp_path / "t.png"))
    for name in ("b.png", "t.png"):
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_tiny_profile_end_to_end(tmp_path, tiny_run):
    """The learned model on the tiny profile, MPPI only: collect, train, plan, report.

    (`tiny_run` is requested so that, in a whole test run, collection and training reuse its
    compiled functions: the tiny profile has the same sizes.)
    """
    profile = dataclasses.replace(suite.select(suite.TINY, planner_names="mppi"),
                                  budget_scales=(1.0,))
    results = suite.run(profile, out_dir=str(tmp_path / "out"), work=str(tmp_path / "work"),
                        log=lambda _: None)
    assert results["complete"]
    (row,) = results["rows"]
    assert (row["task"], row["obs"], row["model"], row["planner"]) == (
        "reacher", "state", "learned", "mppi")
    lo, hi = row["success_ci95"]
    assert 0.0 <= lo <= row["success_rate"] <= hi <= 1.0
    assert row["successes"] == round(row["success_rate"] * 2) and row["episodes"] == 2
    assert row["calls_per_step"] == 8 * 2 * 4  # samples x iterations x horizon
    assert row["dataset_transitions"] == 8 * 10 and row["train_steps"] == 60
    assert row["seeds"] == {"data": 0, "train": 0, "eval": 424_242}  # the test pairs
    assert row["pairs"] == {"split": "test", "seed": 424_242}
    assert row["provenance"]["pairs"]["episodes"] == 2 and row["provenance"]["command"]
    assert row["ms_per_env_step"] > 0 and row["train_seconds"] > 0
    trace = row["trace"]  # one open-loop plan: the best cost never rises
    assert len(trace) == 2 and trace[1] <= trace[0] + 1e-6
    for key in ("json", "markdown", "budget_plot", "trace_plot"):
        assert os.path.getsize(results["paths"][key]) > 0, key
    with open(results["paths"]["json"]) as f:
        assert json.load(f)["rows"] == json.loads(json.dumps(results["rows"]))


class _Fake:
    """A model whose evaluations cost nothing: episode i succeeds when i < samples / 8."""

    def __init__(self):
        self.evaluated = []

    def __call__(self, spec, task, seed, work, log):
        import numpy as np

        from hjepa.evaluate import EvalResult

        def run(task, key, num_episodes, planner, options, horizon):
            self.evaluated.append((options.get("num_samples"), horizon))
            success = np.arange(num_episodes) < options.get("num_samples", 8) // 8
            return EvalResult(success=success, final_distance=np.where(success, 0.01, 0.1),
                              distances=np.zeros((num_episodes, 3)), compile_seconds=0.0,
                              run_seconds=0.5, num_episodes=num_episodes, num_steps=3)

        return suite.ModelRun("fake", spec.obs, run, None, {"train_seconds": 1.0})


def test_rows_are_written_as_they_finish_never_overwritten_and_resumed(tmp_path, monkeypatch):
    fake = _Fake()
    monkeypatch.setitem(suite.MODELS, "fake", fake)
    monkeypatch.setattr(suite, "cost_trace", lambda *args: [2.0, 1.0])
    profile = dataclasses.replace(suite.select(suite.TINY, planner_names="mppi,cem"),
                                  models=("fake",), sweep_models=("fake",), episodes=4,
                                  budget_scales=(0.5, 1.0))
    out, work = str(tmp_path / "out"), str(tmp_path / "work")
    written = []
    real_save = suite._save

    def save(results, paths):  # what is on disk after each row
        real_save(results, paths)
        with open(paths["json"]) as f:
            written.append(len(json.load(f)["rows"]))

    monkeypatch.setattr(suite, "_save", save)
    results = suite.run(profile, out_dir=out, work=work, plots=False, log=lambda _: None)
    assert written == [1, 2, 3, 4, 4]  # a row at a time, then the complete file
    rates = {(r["planner"], r["budget_scale"]): r["success_rate"] for r in results["rows"]}
    assert rates == {("mppi", 1.0): 1 / 4, ("mppi", 0.5): 0.0, ("cem", 1.0): 1 / 4,
                     ("cem", 0.5): 0.0}  # 8 samples -> 1 of 4 episodes; 4 samples -> none
    assert [r["trace"] for r in results["rows"] if r["budget_scale"] == 1.0] == [[2.0, 1.0]] * 2

    # an existing results file is never replaced without being asked
    with pytest.raises(ValueError, match="--overwrite"):
        suite.run(profile, out_dir=out, work=work, log=lambda _: None)
    with pytest.raises(ValueError, match="another profile"):
        suite.run(dataclasses.replace(profile, episodes=3), out_dir=out, work=work,
                  resume=True, log=lambda _: None)
    assert len(fake.evaluated) == 4

    # an interrupted run (the last row missing, not complete) resumes with that row only
    path = results["paths"]["json"]
    with open(path) as f:
        cut = json.load(f)
    kept = cut["rows"][:3]
    cut.update(rows=kept, complete=False)
    with open(path, "w") as f:
        json.dump(cut, f)
    resumed = suite.run(profile, out_dir=out, work=work, resume=True, plots=False,
                        log=lambda _: None)
    assert len(fake.evaluated) == 5 and fake.evaluated[-1] == (4, 4)
    assert resumed["rows"][:3] == kept and resumed["complete"]
    assert suite.row_key(resumed["rows"][3]) == "reacher/state/fake/cem/x0.5/seed0"
    assert len(resumed["sessions"]) == 2

    # --overwrite starts again
    again = suite.run(profile, out_dir=out, work=work, overwrite=True, plots=False,
                      log=lambda _: None)
    assert len(again["rows"]) == 4 and len(again["sessions"]) == 1


@pytest.mark.slow  # ~30 s; test_calls_per_step checks its budget, and the CLI's two-level
# train-and-plan test and the umaze_h2 guard plan hierarchical models in the default run
def test_tiny_profile_hierarchical_model_end_to_end(tmp_path):
    """The hierarchical JEPA in the suite: a two-level model trained on the tiny profile's
    data, planned with MPPI at both levels; counted calls, no cost trace."""
    profile = dataclasses.replace(suite.select(suite.TINY, models="hierarchical"),
                                  budget_scales=(1.0,))
    results = suite.run(profile, out_dir=str(tmp_path / "out"), work=str(tmp_path / "work"),
                        log=lambda _: None, plots=False)
    (row,) = results["rows"]
    assert (row["task"], row["obs"], row["model"], row["planner"]) == (
        "reacher", "state", "hierarchical", "hierarchical")
    # level 2: 8 samples x 2 it x 2 macro-actions, level 1: 8 x 2 x 4, subgoal rollout: 2
    assert row["calls_per_step"] == 8 * 2 * 2 + 8 * 2 * 4 + 2
    assert row["model_config"]["kind"] == "hierarchy"
    assert row["budget_text"] == "8 samples x 2 it per level, H2 macro + H4"
    assert np.isfinite(row["final_level2_prediction_loss"]) and "trace" not in row
    assert 0.0 <= row["mean_final_distance"] < 0.5 and row["episodes"] == 2
    with open(results["paths"]["markdown"]) as f:
        assert "| hierarchical | hierarchical |" in f.read()
