"""Pinned-seed fingerprints of what hjepa computes, to check that a refactoring changed nothing.

    python scripts/fingerprint.py OUT.json        # then compare two files with --compare

Each entry is a SHA-256 of the bytes of a result (trained parameters, final distances, success
counts) computed with fixed seeds on the CPU: a flat fit, a hierarchical fit, a critic fit, a
latent-variable fit, learned / hierarchical / oracle closed-loop evaluation, a shipped run's
plans, and the `tiny` bench profile's rows. Two commits that compute the same things give the
same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

import jax
import numpy as np

import planners
from hjepa import critic as critic_lib
from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import hierarchy, latent_variable, pretrained, tasks
from hjepa import train as train_lib
from hjepa.model import ModelConfig


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def fingerprints(work: str) -> dict:
    out = {}
    collect = data_lib.CollectConfig(task="reacher", obs="state", num_episodes=8,
                                     episode_length=10, episodes_per_shard=4, seed=0)
    dataset = data_lib.collect(collect, os.path.join(work, "data"), progress=False)
    out["dataset"] = digest(dataset.arrays())
    model = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(32, 32),
                        predictor_hidden=(32, 32))
    train = train_lib.TrainConfig(steps=60, batch_size=32, window=4, seed=0,
                                  checkpoint_every=30, log_every=10)
    state = train_lib.fit(model, train, dataset, os.path.join(work, "flat"), progress=False)
    out["flat_fit_params"] = digest(state.params)
    config_h = hierarchy.make_config(model, num_levels=2, chunk=2, macro_size=2, base_window=4)
    state_h = train_lib.fit(config_h, train, dataset, os.path.join(work, "h2"), progress=False)
    out["hierarchy_fit_params"] = digest(state_h.params)

    latents = jax.jit(lambda p, o: hierarchy.encode(hierarchy.make_config(model, num_levels=1),
                                                    {"base": p, "levels": ()}, o))(
        state.params, dataset.arrays()[0])
    critic_config = critic_lib.CriticConfig(embedding_size=4, hidden=(16,), steps=40,
                                            batch_size=16, window=4, max_steps=10.0)
    critic_params, _ = train_lib.fit_critic(critic_config, latents, log_every=20)
    out["critic_fit_params"] = digest(critic_params)

    lv_config = latent_variable.LatentVariableConfig(model=model, latent_variable_size=2,
                                                     inference_hidden=(16,))
    obs, actions = dataset.arrays()
    lv_params, _ = train_lib.fit_latent_variable(lv_config, train, obs, actions)
    out["latent_variable_fit_params"] = digest(lv_params)

    task = tasks.make("reacher")
    key = jax.random.key(10_000)
    options = {"num_samples": 16, "iterations": 2, "temperature": 0.1, "noise_std": 0.3}
    learned = evaluate_lib.evaluate(task, key, num_episodes=4, model_config=model,
                                    params=state.params, planner_options=options, horizon=4,
                                    num_steps=20)
    out["evaluate_learned"] = digest(learned.final_distance)
    with_critic = evaluate_lib.evaluate(task, key, num_episodes=2, model_config=model,
                                        params=state.params, planner_options=options,
                                        horizon=4, num_steps=10,
                                        critic=(critic_config, critic_params))
    out["evaluate_learned_critic"] = digest(with_critic.final_distance)
    for name, planner, opts in (("cem", planners.cem, {"num_samples": 16, "num_elites": 4,
                                                       "iterations": 2}),
                                ("gd", planners.gradient_descent, {"iterations": 3,
                                                                   "num_candidates": 2})):
        result = evaluate_lib.evaluate(task, key, num_episodes=2, model_config=model,
                                       params=state.params, planner=planner,
                                       planner_options=opts, horizon=4, num_steps=10)
        out[f"evaluate_learned_{name}"] = digest(result.final_distance)
    hier = evaluate_lib.evaluate_hierarchy(task, key, config_h, state_h.params, num_episodes=2,
                              horizons=(2, 4), planner_options=(options, options),
                              num_steps=12, snap_radius=0.5)
    out["evaluate_hierarchical"] = digest(hier.final_distance)
    oracle = evaluate_lib.evaluate(task, key, num_episodes=2, horizon=4, num_steps=6,
                                   planner_options={"num_samples": 8, "iterations": 1})
    out["evaluate_oracle"] = digest(oracle.final_distance)
    lv_result, _ = evaluate_lib.evaluate_latent_variable(
        task, key, lv_config, lv_params, num_episodes=2, num_samples=2, planner_options=options,
        horizon=4, num_steps=10)
    out["evaluate_latent_variable"] = digest(lv_result.final_distance)

    for name in ("reacher", "umaze_h2"):
        config, _, params = train_lib.load_run(pretrained.path(name))
        out[f"pretrained_{name}_params"] = digest(params)

    from benchmarks import suite

    results = suite.run(suite.TINY, out_dir=os.path.join(work, "bench"),
                        work=os.path.join(work, "bench-work"), plots=False, log=lambda t: None)
    out["bench_tiny_rows"] = {suite.row_key(r): [r["success_rate"], r["mean_final_distance"]]
                              for r in results["rows"]}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--compare", default=None, help="a fingerprint file to compare with")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        found = fingerprints(work)
    with open(args.out, "w") as f:
        json.dump(found, f, indent=2, sort_keys=True)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        differ = sorted(k for k in set(before) | set(found) if before.get(k) != found.get(k))
        print("identical" if not differ else f"differ: {differ}")
        return 1 if differ else 0
    print(json.dumps(found, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
