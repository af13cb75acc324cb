"""benchmarks.task_suite: its table and its refusals (the runs themselves are benchmarks)."""

from __future__ import annotations

from benchmarks import task_suite


def _row(model, success, cost=None):
    row = {"task": "two_rooms", "obs": "pixels", "model": model, "success_rate": success,
           "success_ci95": [0.9, 1.0], "episodes": 64, "mean_final_distance": 0.0107,
           "ms_per_step_amortised": 31.2, "seconds_per_200_step_episode": 6.24,
           "calls_per_step": 8192, "train_seconds": 881.0, "dataset_episodes": 1500,
           "dataset_episode_length": 100,
           "planner": {"name": "mppi", "num_samples": 128, "horizon": 16, "iterations": 4}}
    if cost is not None:
        row["cost"] = cost
    return row


def test_markdown_has_a_line_per_row_with_cost_and_planner():
    table = task_suite.markdown([_row("learned + critic", 1.0, "critic"),
                                 _row("learned", 0.656)])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| task | obs | model | cost | planner |")
    assert ("| two_rooms | pixels | learned + critic | critic | MPPI 128 x H16 x 4 | "
            "100.0% (90-100) of 64 | 0.0107 | 31.20 | 6.24 | 8192 | 881 | 1500 eps x 100 |"
            == lines[2])
    assert "| learned | latent distance |" in lines[3]  # rows written before the cost field


def test_unknown_entries_are_refused_with_the_known_ones(capsys, tmp_path):
    code = task_suite.main(["--only", "reacher/depth", "--work", str(tmp_path / "w"),
                            "--json", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "reacher/depth" in err and "two_rooms/pixels" in err
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "w").exists()


SUITE_TASKS = ("reacher", "two_rooms", "umaze", "pusher", "push_t", "ant_umaze")


def test_every_task_has_a_state_and_a_pixel_spec_and_one_oracle():
    for task in SUITE_TASKS:
        for obs in ("state", "pixels"):
            spec = task_suite.SPECS[(task, obs)]
            assert (spec.task, spec.obs) == (task, obs)
            assert (spec.collect.task, spec.collect.obs) == (task, obs)
            spec.collect.validate()
            assert spec.max_episodes is None or spec.max_episodes >= 1
        oracles = [obs for obs in ("state", "pixels")
                   if task_suite.SPECS[(task, obs)].oracle_planner is not None]
        assert len(oracles) == 1, (task, oracles)  # the oracle does not see observations
