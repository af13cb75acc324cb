"""README tables generated from the results files, never typed.

    python -m benchmarks.tables            # rewrite every generated table in README.md
    python -m benchmarks.tables --check    # exit 1 if a table in README.md is not what its
                                           # results file says (tests/suites/test_tables.py runs it)

A generated table sits in README.md between `<!-- table:NAME -->` and `<!-- /table:NAME -->`;
`TABLES[NAME]` renders it from the committed results JSON. Quoted published figures are not
generated and stay in their own tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from hjepa import provenance, splits, stats, sysinfo
from hjepa.io import atomic_write_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")

# Where each shipped run's earlier figure was measured, on the pairs of seed 10000 (now the
# `val` pairs, on which its settings were chosen): (results file, fields that pick the row).
EARLIER = {
    "reacher": ("bench_quick_val_seed10000_cpu.json", {"task": "reacher", "model": "learned",
                                         "planner": "mppi", "budget_scale": 1.0}),
    "two_rooms": ("bench_quick_val_seed10000_cpu.json", {"task": "two_rooms", "model": "learned",
                                           "planner": "mppi", "budget_scale": 1.0}),
    "two_rooms_pixels": ("task_suite_cpu.json", {"task": "two_rooms", "obs": "pixels",
                                                 "cost": "critic"}),
    "reacher_pixels": ("task_suite_cpu.json", {"task": "reacher", "obs": "pixels",
                                               "cost": "critic"}),
    "umaze_h2": ("hierarchy_cpu.json", {"task": "umaze", "method": "hierarchical"}),
}


def _load(name: str) -> dict:
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def _rate(successes: int, episodes: int) -> str:
    low, high = stats.wilson(successes, episodes)
    return f"{100 * successes / episodes:.1f}% ({100 * low:.0f}-{100 * high:.0f}) of {episodes}"


def _earlier(name: str) -> str:
    """The run's earlier figure, from its results file's row ("-" when not found)."""
    if name not in EARLIER:
        return "-"
    path, fields = EARLIER[name]
    rows = [r for r in _load(path)["rows"]
            if all(r.get(k) == v for k, v in fields.items())]
    if len(rows) != 1:
        raise ValueError(f"tables: expected one row of {path} with {fields}, found {len(rows)}")
    row = rows[0]
    successes = row.get("successes", round(row["success_rate"] * row["episodes"]))
    return _rate(successes, row["episodes"]) + f" (`{path}`)"


def pretrained_test_cpu() -> str:
    """The shipped runs on the test pairs, beside their earlier figure on the val pairs."""
    data = _load("pretrained_test_cpu.json")
    lines = ["| shipped run | task | model | success on `test` pairs (95% CI) | earlier figure, "
             "`val` pairs (seed 10000) | mean final distance | ms / MPC step | measured at |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        p = r["provenance"]
        commit = provenance.commit_label(p)
        lines.append(
            f"| `{r['name']}` | {r['task']} | {r['model']} | "
            f"{_rate(r['successes'], r['episodes'])} | {_earlier(r['name'])} | "
            f"{r['mean_final_distance']:.4f} | {r['ms_per_step_amortised']:.1f} | {commit}, "
            f"{sysinfo.describe(p['hardware'])} |")
    seeds = sorted({r["seed"] for r in data["rows"]})
    lines.append("")
    lines.append(f"Test pairs: seed {', '.join(map(str, seeds))} (`hjepa.splits`), 64 per run, "
                 "planned with `hjepa plan --pretrained NAME` and the settings each run ships "
                 "with; from `benchmarks/results/pretrained_test_cpu.json`.")
    return "\n".join(lines)


def demo_cpu() -> str:
    """`hjepa demo` as a new user runs it (its results.json, copied to demo_cpu.json)."""
    data = _load("demo_cpu.json")
    lines = ["| model | episodes | success (95% CI) | mean final distance | ms / MPC step |",
             "|---|---|---|---|---|"]
    for key, name in (("learned", "learned JEPA + MPPI"), ("random", "random actions"),
                      ("oracle", "oracle (Brax physics) + MPPI")):
        r = data[key]
        successes = round(r["success_rate"] * r["episodes"])
        lines.append(f"| {name} | {r['episodes']} | {_rate(successes, r['episodes'])} | "
                     f"{r['mean_final_distance']:.4f} | {r['ms_per_step_amortised']:.2f} |")
    p = data["provenance"]
    phases = data["phases"]
    pairs = data["pairs"]
    commit = provenance.commit_label(p)
    lines.append("")
    lines.append(f"{pairs['split']} pairs (seed {pairs['seed']}); time: collect "
                 f"{phases['collect']:.0f} s, train {phases['train']:.0f} s, plan learned "
                 f"{phases['plan_learned']:.0f} s, plan oracle {phases['plan_oracle']:.0f} s; "
                 f"total {data['total_seconds']:.0f} s in the demo (measured at {commit}, "
                 f"{sysinfo.describe(p['hardware'])}); from `benchmarks/results/demo_cpu.json`.")
    ratio_path = os.path.join(RESULTS, "demo_ratio_cpu.json")
    if os.path.exists(ratio_path):
        ratio = _load("demo_ratio_cpu.json")
        new, old = ratio["new"], ratio["old"]
        lines.append("")
        lines.append(f"As a new user runs it (fresh clone and venv, `hjepa demo`, start-up "
                     f"included): {new['wall_seconds']:.0f} s at {new['commit'][:7]}, against "
                     f"{old['wall_seconds']:.0f} s for the demo of {old['commit'][:7]} run just "
                     f"before it on the same machine: {100 * ratio['ratio']:.0f}% of its time "
                     f"({sysinfo.describe(ratio['hardware'])}); from "
                     "`benchmarks/results/demo_ratio_cpu.json` (`python -m "
                     "benchmarks.demo_ratio`).")
    earlier_path = os.path.join(RESULTS, "demo_ratio_oracle8_cpu.json")
    if os.path.exists(earlier_path):
        earlier = _load("demo_ratio_oracle8_cpu.json")
        lines.append(f"An earlier pair of runs, with the oracle on 8 pairs (at "
                     f"{earlier['new']['commit'][:7]}): {earlier['new']['wall_seconds']:.0f} s "
                     f"against {earlier['old']['wall_seconds']:.0f} s, "
                     f"{100 * earlier['ratio']:.0f}% (the old demo's time differs between the "
                     "two pairs, on the same machine in the same session: the figure that "
                     "counts is the ratio; `benchmarks/results/demo_ratio_oracle8_cpu.json`).")
    return "\n".join(lines)


PLANNER_NAMES = {"mppi": "MPPI", "cem": "CEM", "gd": "gradient descent", "beam": "beam search"}


def _bench_rows(name: str) -> dict:
    """(task, model, planner) -> the main row (budget scale 1, seed 0) of a suite results file."""
    return {(r["task"], r["model"], r["planner"]): r for r in _load(name)["rows"]
            if r["budget_scale"] == 1.0 and r["seed"] == 0}


def bench_quick_cpu() -> str:
    """`hjepa bench --profile quick` on the test pairs, beside the earlier run on seed 10000."""
    data = _load("bench_quick_cpu.json")
    now, earlier = _bench_rows("bench_quick_cpu.json"), _bench_rows(
        "bench_quick_val_seed10000_cpu.json")
    lines = ["| task | planner | learned, `test` pairs (95% CI) | learned, earlier on `val` "
             "(seed 10000) | ms / env step | oracle, `test` pairs | oracle, earlier on `val` |",
             "|---|---|---|---|---|---|---|"]
    for (task, model, planner), r in now.items():
        if model != "learned":
            continue
        oracle = now.get((task, "oracle", planner))
        old = earlier.get((task, "learned", planner))
        old_oracle = earlier.get((task, "oracle", planner))
        lines.append(
            f"| {task} | {PLANNER_NAMES.get(planner, planner)} | "
            f"{_rate(r['successes'], r['episodes'])} | "
            f"{_rate(old['successes'], old['episodes']) if old else '-'} | "
            f"{r['ms_per_env_step']:.1f} | "
            f"{_rate(oracle['successes'], oracle['episodes']) if oracle else '-'} | "
            f"{_rate(old_oracle['successes'], old_oracle['episodes']) if old_oracle else '-'} |")
    session = data["sessions"][-1]
    first = next(iter(now.values()))["provenance"]
    commit = (first["commit"] or "?")[:7] + (" (dirty)" if first["dirty"] else "")
    lines.append("")
    lines.append(f"Measured at {commit} on {data['machine']} at the start; the whole run, "
                 f"collection and training included, took {session['wall_seconds']:.0f} s wall; "
                 "from "
                 "`benchmarks/results/bench_quick_cpu.json` (each row with its provenance). "
                 "The earlier column: `bench_quick_val_seed10000_cpu.json`, measured at an "
                 "older commit with mujoco 4.0.0 on the pairs its settings were chosen on.")
    return "\n".join(lines)


def latent_variable_test_cpu() -> str:
    """Planning over samples of the latent variable on windy_cliff, on the test pairs, beside
    the earlier figures (pairs of seed 10000, an older commit)."""
    data = _load("latent_variable_test_cpu.json")
    earlier = {r["planner"]: r for r in _load("latent_variable_cpu.json")["rows"]}
    lines = ["| planning with | success on `test` pairs (95% CI) | earlier, pairs of seed 10000 "
             "| entered the gusty strip | fell | predictor calls / step |",
             "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        old = earlier.get(r["planner"])
        lines.append(f"| {r['planner']} | {_rate(r['successes'], r['episodes'])} | "
                     f"{_rate(old['successes'], old['episodes']) if old else '-'} | "
                     f"{r['entered_strip']} of {r['episodes']} | {r['fell']} | "
                     f"{r['predictor_calls_per_step']:,} |")
    d = data["model_diagnostics"]
    p = data["provenance"]
    commit = provenance.commit_label(p)
    lines.append("")
    prior, data_rate = (100 * d["prior_sample_predicts_fall_from_strip"],
                        100 * d["gust_rate_in_strip_data"])
    lines.append(f"A draw of u from N(0, I) predicts a gust {prior:.1f}% of the time from the "
                 f"strip, against {data_rate:.1f}% in the data. "
                 f"{data['pairs']['split'] or 'custom'} pairs (seed "
                 f"{data['pairs']['seed']}); measured at {commit}, "
                 f"{sysinfo.describe(p['hardware'])}, {data['total_seconds']:.0f} s in all; from "
                 "`benchmarks/results/latent_variable_test_cpu.json` (the earlier column: "
                 "`latent_variable_cpu.json`).")
    return "\n".join(lines)


def _commit(p: dict) -> str:
    """"abc1234" or "abc1234 (dirty)"."""
    text = (p.get("commit") or "?")[:7]
    return text + (" (dirty)" if p.get("dirty") else "")


def _rate_of(row: dict) -> str:
    successes = row.get("successes", round(row["success_rate"] * row["episodes"]))
    return _rate(successes, row["episodes"])


def _optional(name: str) -> dict | None:
    path = os.path.join(RESULTS, name)
    return _load(name) if os.path.exists(path) else None


def hierarchy_test_cpu() -> str:
    """Hierarchical against flat planning (benchmarks/hierarchy.py) on the test pairs, beside
    the earlier figures on the val pairs; rows not re-measured say so."""
    data = _optional("hierarchy_test_cpu.json") or {"rows": [], "meta": {}}
    now = {(r["task"], r["method"]): r for r in data["rows"]}
    earlier = {(r["task"], r["method"]): r for r in _load("hierarchy_cpu.json")["rows"]}
    lines = ["| task | method | success on `test` pairs (95% CI) | earlier, `val` pairs (seed "
             "10000) | mean final distance | predictor calls / step | ms / env step |",
             "|---|---|---|---|---|---|---|"]
    keys = list(now) + [k for k in earlier if k not in now]
    for key in keys:
        r, old = now.get(key), earlier.get(key)
        shown = r or old
        unit = " m" if key[0].startswith("ant") else ""
        lines.append(f"| {key[0]} | {key[1]} | {_rate_of(r) if r else 'not re-measured'} | "
                     f"{_rate_of(old) if old else '-'} | "
                     f"{shown['mean_final_distance']:.3f}{unit} | "
                     f"{shown['predictor_calls_per_step']:,} | "
                     f"{shown['ms_per_step_amortised']:.1f} |")
    lines.append("")
    if now:
        p = next(iter(now.values())).get("provenance") or {}
        lines.append(f"`test` pairs: seed {splits.seed('test')}, measured at {_commit(p)}, "
                     f"{sysinfo.describe(p.get('hardware') or data['meta']['hardware'])}; "
                     "from "
                     "`benchmarks/results/hierarchy_test_cpu.json` (`python -m "
                     "benchmarks.hierarchy --split test`). Training (world model, then "
                     "critic): " + ", ".join(
                         f"{task} {_hierarchy_train(now, task)}"
                         for task in dict.fromkeys(k[0] for k in now)) + ".")
    commits = sorted({_commit(r["provenance"]) for r in earlier.values()})
    lines.append(f"The earlier column (and the rows not re-measured, whose distance and time "
                 f"are from it): `hierarchy_cpu.json`, at {', '.join(commits)} (commits "
                 "recovered from git history), on the pairs the methods were chosen on.")
    return "\n".join(lines)


def _hierarchy_train(rows: dict, task: str) -> str:
    """"178 s + 143 s": the world model's optimiser time, then the critic's (from the rows)."""
    plain = [r["train_seconds"] for (t, _), r in rows.items() if t == task and not r["critic"]]
    with_critic = [r["train_seconds"] for (t, _), r in rows.items() if t == task and r["critic"]]
    text = f"{plain[0]:.0f} s" if plain else "?"
    if plain and with_critic:
        text += f" + {with_critic[0] - plain[0]:.0f} s"
    return text


def _planner_text(planner: dict) -> str:
    return f"MPPI {planner['num_samples']} x H{planner['horizon']} x {planner['iterations']}"


def _suite_model(row: dict) -> str:
    if row["model"] == "oracle":
        return "oracle (true physics)"
    return "learned, critic" if row["cost"] == "critic" else "learned, latent distance"


def _training(row: dict) -> str:
    if row.get("train_seconds") is None:
        return "-"
    if row.get("critic_train_seconds"):
        world = row.get("world_model_train_seconds", row["train_seconds"]
                        - row["critic_train_seconds"])
        return f"{world:.0f} s + {row['critic_train_seconds']:.0f} s critic"
    return f"{row['train_seconds']:.0f} s"


def task_suite_test_cpu() -> str:
    """Every task x {state, pixels} x {oracle, learned}: rows re-measured on the test pairs
    beside their earlier figure; rows only measured before (val pairs) say so."""
    key = lambda r: (r["task"], r["obs"], r["model"])  # noqa: E731
    now = {key(r): r for r in (_optional("task_suite_test_cpu.json") or {"rows": []})["rows"]}
    earlier = {key(r): r for r in _load("task_suite_cpu.json")["rows"]}
    order = ["reacher", "two_rooms", "umaze", "pusher", "ant_umaze"]
    obs_order = {"state": 0, "pixels": 1, "-": 2}
    keys = sorted(set(now) | set(earlier), key=lambda k: (order.index(k[0]) if k[0] in order
                                                          else 99, obs_order[k[1]], k[2]))
    lines = ["| task, obs | model, cost | planner | success on `test` pairs (95% CI) | earlier, "
             "`val` pairs (seed 10000) | training (2 CPU cores) | s / 200-step episode |",
             "|---|---|---|---|---|---|---|"]
    for k in keys:
        r, old = now.get(k), earlier.get(k)
        shown = r or old
        where = f"{k[0]}, {k[1]}" if k[1] != "-" else k[0]
        lines.append(f"| {where} | {_suite_model(shown)} | {_planner_text(shown['planner'])} | "
                     f"{_rate_of(r) if r else 'not re-measured'} | "
                     f"{_rate_of(old) + ', ' + _commit(old['provenance']) if old else '-'}"
                     f" | {_training(shown)} | {shown['seconds_per_200_step_episode']:.1f} |")
    lines.append("")
    if now:
        p = next(iter(now.values()))["provenance"]
        commits = ", ".join(sorted({_commit(r["provenance"]) for r in now.values()}))
        lines.append(f"`test` pairs: seed {next(iter(now.values()))['pairs']['seed']}, measured "
                     f"at {commits} (each row's record), {sysinfo.describe(p['hardware'])}; from "
                     "`benchmarks/results/task_suite_test_cpu.json` (`python -m "
                     "benchmarks.task_suite --split test --only ...`). Training and time per "
                     "episode: the `test` run's where re-measured, else the earlier run's.")
    lines.append("The earlier column: `benchmarks/results/task_suite_cpu.json`, each row with "
                 "the commit it was measured at (recovered from git history). Rows not "
                 "re-measured were never tuned on their pairs except where the shipped runs' "
                 "table above gives their `test` figure (reacher and two_rooms from pixels "
                 "with the critic).")
    return "\n".join(lines)


def planner_throughput() -> str:
    """Every planner against a hand-written jitted version of the same algorithm, same process
    (benchmarks/planner_throughput.py), on each machine it was measured on."""
    lines = ["| machine | planner | problems | ms per call | ratio to the yardstick | plans / s | "
             "share of the matmul peak |", "|---|---|---|---|---|---|---|"]
    notes = []
    for name, machine in (("planner_throughput_cpu.json", "2 CPU cores"),
                          ("planner_throughput_h200.json", "NVIDIA H200")):
        data = _load(name)
        for r in data["rows"]:
            lines.append(f"| {machine} | {r['planner']} | {r['problems']} | "
                         f"{1e3 * r['planners_s']:.1f} | {r['ratio']:.2f}x | "
                         f"{r['plans_per_s']:.3g} | {100 * r['fraction_of_peak']:.1f}% |")
        p, env = data["provenance"], data["environment"]
        how = " (commit recovered from git history)" if p.get("reconstructed") else ""
        notes.append(f"{machine}: measured at {_commit(p)}{how} on {env['date'][:10]}, jax "
                     f"{env['jax']}, load average {env['load_average_1min']:.1f} at the start "
                     f"(`{name}`)")
    lines.append("")
    lines.append("Horizon 16; MPPI and CEM 1024 samples x 6 iterations, gradient descent 32 "
                 "candidates x 64 steps, beam search width 64 x branching 16 x 6; a residual MLP "
                 "predictor (64 + 2 -> 256 -> 256 -> 64). " + "; ".join(notes) + ".")
    return "\n".join(lines)


def reacher_planners() -> str:
    """Every planner on reacher with a demo-sized model (benchmarks/reacher_planners.py),
    measured on the pairs of seed 10000 (now `val`), one NVIDIA H200 and 2 CPU cores."""
    lines = ["| machine | model | planner | success, `val` pairs (seed 10000) (95% CI) | "
             "calls / step | ms / step | measured at |", "|---|---|---|---|---|---|---|"]
    for name, machine in (("reacher_planners_h200.json", "NVIDIA H200"),
                          ("reacher_planners_cpu.json", "2 CPU cores")):
        for r in _load(name)["rows"]:
            lines.append(f"| {machine} | {r['model']} | "
                         f"{PLANNER_NAMES.get(r['planner'], r['planner'])} | {_rate_of(r)} | "
                         f"{r['calls_per_step']:,} | {r['ms_per_step_amortised']:.2f} | "
                         f"{_commit(r['provenance'])} |")
    lines.append("")
    lines.append("From `benchmarks/results/reacher_planners_{h200,cpu}.json` (commits recovered "
                 "from git history; a demo model of that commit, trained on the machine). These "
                 "rows predate the `val`/`test` split and were not re-measured on `test`; the "
                 "same planners on `test` pairs are in the benchmark suite's table below.")
    return "\n".join(lines)


def distill_test_cpu() -> str:
    """Planner alone, policy alone and planner + policy prior (benchmarks/distill.py) on the
    test pairs, against network calls per step."""
    data = _load("distill_test_cpu.json")
    lines = ["| task | acting with | success on `test` pairs (95% CI) | network calls / step | "
             "fewer calls | ms / step | less time |", "|---|---|---|---|---|---|---|"]
    for entry in data["tasks"]:
        for r in entry["rows"]:
            lines.append(f"| {entry['task']} | {r['method']} | {_rate_of(r)} | "
                         f"{r['calls_per_step']:,} | {r['calls_ratio']:.1f}x | "
                         f"{r['ms_per_step_amortised']:.2f} | {r['time_ratio']:.1f}x |")
    lines.append("")
    for entry in data["tasks"]:
        p = entry["rows"][0]["provenance"]
        rounds = entry["distill"]["rounds"]
        source = (f"the shipped run `{entry['pretrained']}`" if entry.get("pretrained")
                  else "the demo's run")
        lines.append(f"- {entry['task']} ({source}): distilled in "
                     f"{entry['distill']['seconds']:.0f} s with other jobs on the machine "
                     f"({len(rounds)} rounds, "
                     f"{sum(r['labels'] for r in rounds):,} planner decisions); measured at "
                     f"{_commit(p)}, {sysinfo.describe(p['hardware'])}, "
                     f"{p['pairs']['split']} pairs (seed {p['pairs']['seed']}).")
    timing = _optional("distill_time_cpu.json")
    for r in (timing or {"rows": []})["rows"]:
        p = r["provenance"]
        lines.append(f"- `hjepa distill` for {r['task']} as a user runs it (`python -m "
                     f"benchmarks.distill_time`): {r['wall_seconds']:.0f} s (load average "
                     f"{r['load_average_before'][0]:.1f} before, "
                     f"{r['load_average_after'][0]:.1f} after), at {_commit(p)}, "
                     f"{sysinfo.describe({**p['hardware'], 'load_average': None})}.")
    lines.append("")
    lines.append("From `benchmarks/results/distill_test_cpu.json` (`python -m benchmarks.distill "
                 "--split test ...`); the budgets were chosen on the `val` pairs "
                 "(`distill_val_cpu.json`).")
    return "\n".join(lines)


def goal_space_test_cpu() -> str:
    """The flat learned planner toward a goal point against the latent distance to a goal
    observation (benchmarks/goal_space.py), on the test pairs."""
    data = _load("goal_space_test_cpu.json")
    lines = ["| task | cost | planner | success on `test` pairs (95% CI) | final distance | "
             "ms / step | s / episode | training s (model + goal space) |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in data["tasks"]:
        planner = _planner_text({**entry["planner"]["options"],
                                 "horizon": entry["planner"]["horizon"]})
        for r in entry["rows"]:
            lines.append(f"| {entry['task']} | {r['method']} | {planner} | {_rate_of(r)} | "
                         f"{r['mean_final_distance']:.3f} | {r['ms_per_step_amortised']:.2f} | "
                         f"{r['seconds_per_episode']:.1f} | {r['train_seconds']:.0f} + "
                         f"{r['goal_space_train_seconds']:.0f} |")
    lines.append("")
    for entry in data["tasks"]:
        p = entry["rows"][0]["provenance"]
        g = entry["goal_space"]
        lines.append(f"- {entry['task']}: goal-space model with stride {g['stride']}, window "
                     f"{g['window']}, max steps {g['max_steps']:g}, {g['steps']} training "
                     f"steps; measured at {_commit(p)}, {sysinfo.describe(p['hardware'])}, "
                     f"{p['pairs']['split']} pairs (seed {p['pairs']['seed']}).")
    lines.append("")
    lines.append("From `benchmarks/results/goal_space_test_cpu.json` (`python -m "
                 "benchmarks.goal_space --task TASK --split test`).")
    return "\n".join(lines)


def push_t_test_cpu() -> str:
    """Push-T under this library's protocol and the peers' (benchmarks/push_t.py), learned and
    oracle, on the test pairs, with the peers' published rates cited beside."""
    from benchmarks import push_t

    data = _load("push_t_test_cpu.json")
    return (push_t.markdown(data["entries"]).rstrip("\n") + "\n\nFrom "
            "`benchmarks/results/push_t_test_cpu.json` (`python -m benchmarks.push_t --split "
            "test`).")


def skills_test_cpu() -> str:
    """Learned skills planned in a goal space (benchmarks/skills.py), on the test pairs."""
    from benchmarks import skills

    data = _load("skills_test_cpu.json")
    return (skills.markdown(data["tasks"]).rstrip("\n") + "\n\nFrom "
            "`benchmarks/results/skills_test_cpu.json` (`python -m benchmarks.skills --task "
            "TASK --split test`).")


def gait_cpu() -> str:
    """The ant's exploration gait, first and shipped (benchmarks/gait.py)."""
    from benchmarks import gait

    return (gait.markdown(_load("gait_cpu.json")).rstrip("\n") + "\n\nFrom "
            "`benchmarks/results/gait_cpu.json` (`python -m benchmarks.gait --tune`).")


TABLES = {"pretrained_test_cpu": pretrained_test_cpu, "demo_cpu": demo_cpu,
          "bench_quick_cpu": bench_quick_cpu,
          "latent_variable_test_cpu": latent_variable_test_cpu,
          "hierarchy_test_cpu": hierarchy_test_cpu, "task_suite_test_cpu": task_suite_test_cpu,
          "planner_throughput": planner_throughput, "reacher_planners": reacher_planners,
          "distill_test_cpu": distill_test_cpu, "goal_space_test_cpu": goal_space_test_cpu,
          "push_t_test_cpu": push_t_test_cpu, "skills_test_cpu": skills_test_cpu,
          "gait_cpu": gait_cpu}


def render(text: str) -> str:
    """`text` (README.md) with every generated table rendered anew."""
    for name, fn in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)",
                             re.S)
        if not pattern.search(text):
            raise ValueError(f"tables: README.md has no <!-- table:{name} --> markers")
        table = fn()
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when README.md differs from what the results files say")
    args = parser.parse_args(argv)
    with open(README) as f:
        text = f.read()
    try:
        rendered = render(text)
    except (OSError, KeyError, ValueError) as error:
        print(f"tables: {error}", file=sys.stderr)
        return 2
    if args.check:
        if rendered != text:
            print("README.md: a generated table differs from its results file; run "
                  "`python -m benchmarks.tables`", file=sys.stderr)
            return 1
        return 0
    if rendered != text:
        atomic_write_bytes(README, rendered.encode())
        print("README.md: tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
