"""The `hjepa` command line: demo, collect, train, plan, bench, inspect.

Library code never reads flags; this module turns arguments into configs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import textwrap

from hjepa.configs import (
    PLANNER_NAMES,
    GoalSpaceConfig,
    PlannerConfig,
    PolicyConfig,
    SkillsConfig,
)

EXAMPLES = {
    "demo": """
        examples:
          hjepa demo                 # collect -> train -> plan on reacher (minutes on 2 cores)
          hjepa demo --quick              # a tiny smoke run (seconds, not meaningful numbers)
          hjepa demo --out /tmp/demo --json
        """,
    "collect": """
        examples:
          hjepa collect reacher --out data/reacher --episodes 2000
          hjepa collect reacher --out data/reacher --episodes 4000 --overwrite
          hjepa collect two_rooms --obs pixels --image-size 32 --out data/two_rooms_px
        """,
    "train": """
        examples:
          hjepa train --data data/reacher --run-dir runs/reacher
          hjepa train --data data/reacher --run-dir runs/reacher --steps 10000 --latent 64
          hjepa train --data data/two_rooms_px --run-dir runs/two_rooms_px --encoder conv
          hjepa train --data data/umaze --run-dir runs/umaze_h2 --levels 2 --chunk 8 \
              --macro-size 2 --window 32                      # a two-level hierarchy
          hjepa train --data data/reacher --run-dir runs/reacher --mesh data=4,model=2
          hjepa train --data data/reacher --run-dir runs/reacher \
              --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0   # on each host
        (run again with the same arguments to resume from the latest checkpoint; every
        visible device is used by default; see docs/scaling.md; the loss curves go to
        RUN_DIR/training_curves.png)
        """,
    "plan": """
        examples:
          hjepa plan --run-dir runs/reacher --episodes 64
          hjepa plan --task reacher --oracle --episodes 8 --samples 64 --horizon 12
          hjepa plan --run-dir runs/reacher --episodes 256 --mesh data=8
          hjepa plan --run-dir runs/umaze_h2 --horizon 8 --high-horizon 8 --snap-radius 1
          hjepa plan --run-dir runs/umaze_h2 --flat     # level 1 alone
          hjepa plan --pretrained umaze_h2 --episodes 16  # a run shipped with hjepa
          hjepa plan --run-dir runs/reacher --episodes 8 --render reacher.html   # Brax viewer
          hjepa plan --run-dir runs/two_rooms_px --episodes 4 --gif px.gif --render-episodes 2
          hjepa plan --run-dir runs/two_rooms_px --critic --noise-std 0.6 --noise-decay 0.5
          hjepa plan --run-dir runs/reacher --policy          # mode 1: the distilled policy
          hjepa plan --run-dir runs/reacher --prior --samples 16 --prior-samples 8
          hjepa plan --run-dir runs/push_t --goals trajectory  # goals 25 steps on, 50 steps
        """,
    "distill": """
        examples:
          hjepa distill --run-dir runs/reacher
          hjepa distill --run-dir runs/two_rooms --rounds 3 --episodes 128 --samples 128 \
              --horizon 24 --iterations 3
        (writes RUN_DIR/policy.json and policy.msgpack; `hjepa plan --policy` acts with it
        alone, `hjepa plan --prior` plans with it as a proposal; a policy of another
        configuration is kept unless --overwrite)
        """,
    "critic": """
        examples:
          hjepa critic --run-dir runs/two_rooms_px --data data/two_rooms_px
          hjepa critic --run-dir runs/umaze --data data/umaze --max-steps 300 --window 32
        (writes RUN_DIR/critic.json and critic.msgpack; `hjepa plan --critic` plans with it;
        a critic of another configuration is kept unless --overwrite)
        """,
    "goal-space": """
        examples:
          hjepa goal-space --run-dir runs/ant --data data/ant --stride 10 --max-steps 60
        (writes RUN_DIR/goal_space.json and goal_space.msgpack: a goal head and a
        goal-conditioned critic over the run's latents; `hjepa plan --goal-space distance`
        or `--goal-space steps` plans toward goals given in the task's goal space with it;
        the dataset must record goal-space positions, as every dataset hjepa collects now)
        """,
    "skills": """
        examples:
          hjepa skills --run-dir runs/ant --data data/ant
          hjepa plan --run-dir runs/ant --skills --goal-space steps
        (writes RUN_DIR/skills.json and skills.msgpack: a chunk encoder, a skill decoder
        and a level-2 predictor over the run's latents, learned from the data's action
        chunks; `hjepa plan --skills` plans skills in the goal space and decodes them into
        actions; skills of another configuration are kept unless --overwrite)
        """,
    "inspect": """
        examples:
          hjepa inspect data/reacher                 # a dataset
          hjepa inspect runs/reacher                 # a training run
          hjepa inspect runs/reacher/checkpoints/3000   # one checkpoint
          hjepa inspect benchmarks/results/bench_quick_cpu.json --json
          hjepa inspect runs/reacher --plot curves.png    # a run's loss curves as PNG
        (exit code 2 when PATH is none of these)
        """,
}


def finite_float(text: str) -> float:
    """argparse type: a finite real number (NaN and inf are refused where they are parsed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


SEED_RANGE = 2**32


def seed(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < SEED_RANGE:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32), got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hjepa",
        description="Planning with hierarchical JEPA world models on Brax tasks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `hjepa COMMAND --help` for each command's options and examples.\n\n"
               + EXIT_STATUSES,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help_text, examples=None):
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=textwrap.dedent(EXAMPLES[name] if examples is None
                                                  else examples),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--quiet", action="store_true", help="no progress output")
        p.add_argument("--json", action="store_true", help="print machine-readable JSON only")
        p.add_argument("--debug", action="store_true",
                       help="show the traceback of an error (also: HJEPA_DEBUG=1)")
        return p

    p = add("demo", "Collect reward-free data, train a JEPA and plan to 64 held-out goals.")
    p.add_argument("--out", default="hjepa-demo", help="output directory (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset or run of another configuration in --out")

    p = add("collect", "Collect a reward-free dataset with an exploration policy (correlated "
            "random actions; a gait controller for ant_umaze, approach-and-push for pusher).")
    p.add_argument("task", help="task name, e.g. reacher")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--obs", default="state", help="observation kind: state or pixels")
    p.add_argument("--image-size", type=int, default=64,
                   help="side of pixel observations (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--episode-length", type=int, default=None,
                   help="steps per episode (default: the task's episode length)")
    p.add_argument("--episodes-per-shard", type=int, default=500)
    p.add_argument("--policy", choices=("auto", "ar1", "waypoint", "reach", "push", "push_block"),
                   default="auto",
                   help="exploration: ar1 (correlated random actions), waypoint (ant_umaze's "
                        "gait controller walking to random waypoints), reach (reacher's noisy "
                        "reach-and-hold of random poses, 1/4 of the episodes random), push "
                        "(pusher's noisy approach-and-push toward random points, 1/5 of the "
                        "episodes random), push_block (push_t's noisy approach-and-push of the T "
                        "toward random points, 1/5 of the episodes random), auto (waypoint "
                        "for ant_umaze, push for pusher, push_block for push_t, else ar1) "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")

    p = add("train", "Train a JEPA world model on a dataset (resumes from the latest checkpoint).")
    p.add_argument("--data", required=True, help="dataset directory from `hjepa collect`")
    p.add_argument("--run-dir", required=True, help="where config, metrics and checkpoints go")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--window", type=int, default=8, help="multi-step prediction length")
    p.add_argument("--learning-rate", type=finite_float, default=1e-3)
    p.add_argument("--latent", type=int, default=32, help="latent size D")
    p.add_argument("--hidden", type=int, default=256, help="hidden width of the MLPs")
    p.add_argument("--encoder", choices=("mlp", "conv", "vit"), default=None,
                   help="observation encoder (default: mlp for state, conv for pixels)")
    p.add_argument("--frames", type=int, default=1,
                   help="frames stacked on the channels of pixel observations (reacher: 2); "
                        "the conv encoder encodes each apart and returns [pose, pose "
                        "differences] (default: %(default)s)")
    p.add_argument("--inverse-dynamics", type=finite_float, default=0.0, metavar="WEIGHT",
                   help="weight of an inverse-dynamics term (a head infers each action from "
                        "consecutive latents), for encoders that drop small moving parts; "
                        "0: none (default)")
    p.add_argument("--target-gradient", choices=("auto", "stop", "pass"), default="auto",
                   help="whether the prediction loss trains the encoder through its targets "
                        "(the encoded future observations): auto stops it for states and passes "
                        "it for pixels; the reacher from pixels trains with stop and "
                        "--inverse-dynamics 10 (default: %(default)s)")
    p.add_argument("--levels", type=int, default=1,
                   help="levels of the world model: 1 is flat, 2+ a hierarchy (hjepa.hierarchy)")
    p.add_argument("--chunk", type=int, default=8,
                   help="steps of the level below per macro-action of each upper level")
    p.add_argument("--macro-size", type=int, default=4, help="size of each macro-action")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run of another configuration in --run-dir")

    _add_parallel_flags(p)

    p = add("critic", "Train a critic (learned steps to go between latents) for a trained run, "
                      "from the run's dataset encoded by its frozen encoder.")
    p.add_argument("--run-dir", required=True, help="trained run directory (flat model)")
    p.add_argument("--data", required=True, help="the dataset the run was trained on")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--max-steps", type=finite_float, default=100.0,
                   help="random pairs are pushed apart up to this many steps")
    p.add_argument("--window", type=int, default=16, help="observed stretches up to this long")
    p.add_argument("--embedding", type=int, default=16, help="embedding size of the critic")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a critic of another configuration in --run-dir")

    p = add("goal-space", "Train a goal-space model for a trained run: a head from latents to "
                          "the task's goal space and a critic of steps to a goal point, from "
                          "the run's dataset encoded by its frozen encoder.")
    p.add_argument("--run-dir", required=True, help="trained run directory (flat model)")
    p.add_argument("--data", required=True, help="the dataset the run was trained on")
    p.add_argument("--steps", type=int, default=GoalSpaceConfig.steps)
    p.add_argument("--max-steps", type=finite_float, default=GoalSpaceConfig.max_steps,
                   help="the critic's random pairs are pushed apart up to this many steps")
    p.add_argument("--window", type=int, default=GoalSpaceConfig.window,
                   help="observed stretches up to this long (in strides)")
    p.add_argument("--stride", type=int, default=GoalSpaceConfig.stride,
                   help="the critic's clock, in environment steps: it learns from every "
                        "stride-th state and counts in strides (e.g. 10 for 500-step episodes)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a goal-space model of another configuration in --run-dir")

    p = add("skills", "Learn skills for a trained run: macro-actions of the data's action "
                      "chunks, a decoder from a skill to actions and a predictor of where a "
                      "skill leads, over the run's frozen latents.")
    p.add_argument("--run-dir", required=True, help="trained run directory (flat model)")
    p.add_argument("--data", required=True, help="the dataset the run was trained on")
    p.add_argument("--chunk", type=int, default=SkillsConfig.chunk,
                   help="steps a skill is held for (default: %(default)s)")
    p.add_argument("--macro-size", type=int, default=SkillsConfig.macro_size,
                   help="size of a skill (default: %(default)s)")
    p.add_argument("--kl-weight", type=finite_float, default=SkillsConfig.kl_weight,
                   help="weight of the skills' KL bottleneck (default: %(default)s)")
    p.add_argument("--steps", type=int, default=SkillsConfig.steps)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace skills of another configuration in --run-dir")

    p = add("distill", "Distil the planner into a reactive policy over latents (mode 1 from "
                       "mode 2): the planner labels the states of practice episodes, DAgger-style.")
    p.add_argument("--run-dir", required=True, help="trained run directory (flat model)")
    p.add_argument("--rounds", type=int, default=PolicyConfig.rounds,
                   help="labelling rounds; from the second the policy acts (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=PolicyConfig.episodes,
                   help="practice episodes per round (default: %(default)s)")
    p.add_argument("--steps", type=int, default=PolicyConfig.steps,
                   help="regression steps of each fit (default: %(default)s)")
    p.add_argument("--expert-share", type=finite_float, default=PolicyConfig.expert_share,
                   help="share of the planner's actions in round r: SHARE**r (default: "
                        "%(default)s)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--horizon", type=int, default=None, help="the planner that labels: horizon")
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--temperature", type=finite_float, default=None)
    p.add_argument("--noise-std", type=finite_float, default=None)
    p.add_argument("--noise-decay", type=finite_float, default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a policy of another configuration in --run-dir")

    p = add("plan", "Plan closed-loop episodes to held-out goals with MPPI "
                    "(learned model or oracle).")
    p.add_argument("task_name", nargs="?", default=None, metavar="TASK",
                   help="task name, the same as --task (e.g. `hjepa plan two_rooms "
                        "--pretrained`)")
    p.add_argument("--run-dir", help="trained run directory (learned model)")
    p.add_argument("--pretrained", nargs="?", const="", default=None, metavar="NAME",
                   help="plan with a run shipped with hjepa (hjepa.pretrained), e.g. umaze_h2, "
                        "with the planner settings it was measured with; without NAME, the "
                        "one shipped for TASK")
    p.add_argument("--task", default=None, help="task name (required with --oracle)")
    p.add_argument("--oracle", action="store_true", help="plan through the true physics")
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--planner", choices=PLANNER_NAMES, default="mppi",
                   help="trajectory optimiser: mppi, cem, gd (gradient descent through the "
                        "model) or beam (beam search); options not given take its defaults "
                        "(default: %(default)s)")
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--elites", type=int, default=None,
                   help="--planner cem: elites per iteration (at most --samples)")
    p.add_argument("--horizon", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--temperature", type=finite_float, default=None)
    p.add_argument("--noise-std", type=finite_float, default=None)
    p.add_argument("--noise-decay", type=finite_float, default=None)
    p.add_argument("--split", choices=("val", "test"), default="test",
                   help="start/goal pairs: val (for choosing settings) or test (for reporting "
                        "figures; never used for a choice) (default: %(default)s; hjepa.splits)")
    p.add_argument("--seed", type=seed, default=None,
                   help="seed of a custom set of start/goal pairs (instead of --split)")
    p.add_argument("--goals", choices=("task", "trajectory"), default="task",
                   help="start/goal pairs: task (the task's own random pairs) or trajectory "
                        "(the peers' Push-T protocol: the goal is the state --goal-offset steps "
                        "after the start along a held-out trajectory of the task's data "
                        "policy, --budget steps per episode) (default: %(default)s)")
    p.add_argument("--goal-offset", type=int, default=None,
                   help="--goals trajectory: steps from start to goal (default 25)")
    p.add_argument("--budget", type=int, default=None,
                   help="--goals trajectory: control steps per episode (default 50)")
    p.add_argument("--critic", action="store_true", default=None,
                   help="cost: the run's critic (`hjepa critic`) instead of the latent distance "
                        "(a pretrained run measured with its critic uses it by default)")
    p.add_argument("--goal-space", choices=("distance", "steps"), default=None,
                   help="plan toward each goal as a point of the task's goal space (the "
                        "object's or the torso's position), never its observation, with the "
                        "run's goal-space model (`hjepa goal-space`): distance = its goal "
                        "head's distance, steps = its critic's steps to go")
    p.add_argument("--skills", action="store_true",
                   help="with --goal-space: plan the run's learned skills (`hjepa skills`) "
                        "through their level-2 predictor and decode the first into actions; "
                        "--horizon, --samples, --iterations, --temperature, --noise-std and "
                        "--noise-decay, when given, set that plan (horizon in skills)")
    p.add_argument("--replan-every", type=int, default=None,
                   help="--skills: steps between plans over skills, a divisor of the "
                        "skills' chunk (default 1; the chunk holds each skill for its chunk)")
    p.add_argument("--policy", action="store_true",
                   help="act with the run's distilled policy alone (`hjepa distill`), one "
                        "forward pass a step, no planning (mode 1)")
    p.add_argument("--prior", action="store_true",
                   help="plan with the run's distilled policy as a proposal: the plan starts "
                        "from its rollout and --prior-samples of its noisy rollouts join the "
                        "samples (mppi, cem; gd starts from it)")
    p.add_argument("--prior-samples", type=int, default=None,
                   help="--prior: policy rollouts per iteration (mppi, cem; default 8)")
    p.add_argument("--prior-noise-std", type=finite_float, default=None,
                   help="--prior: action noise of those rollouts (default 0.1)")
    p.add_argument("--flat", action="store_true",
                   help="with a hierarchical run: plan with its level 1 alone")
    p.add_argument("--high-horizon", type=int, default=None,
                   help="hierarchical runs: macro-actions per plan of each upper level")
    p.add_argument("--high-noise-std", type=finite_float, default=None,
                   help="hierarchical runs: MPPI noise of the upper levels (macro box [-1, 1])")
    p.add_argument("--snap-radius", type=finite_float, default=None,
                   help="hierarchical runs: subgoals within this latent distance of the goal "
                        "become the goal")
    g = p.add_argument_group("pictures", "What the first episodes looked like (learned, "
                                         "hierarchical or oracle planning).")
    g.add_argument("--render", default=None, metavar="OUT.html",
                   help="write Brax's HTML viewer of the first --render-episodes episodes, one "
                        "after another (the page loads three.js from a CDN)")
    g.add_argument("--gif", default=None, metavar="OUT.gif",
                   help="pixel runs: write an animated GIF of each step's observation beside "
                        "the goal image")
    g.add_argument("--render-episodes", type=int, default=1, metavar="N",
                   help="episodes shown by --render and --gif (default: %(default)s)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace existing --render / --gif files")
    _add_parallel_flags(p)

    for name, command in _plugins().items():  # e.g. `hjepa bench`, from the benchmarks
        p = add(name, command.HELP, command.EXAMPLES)
        command.add_arguments(p)

    p = add("inspect", "Summarise a dataset, a training run or checkpoint, or a results file.")
    p.add_argument("path", help="dataset directory, run directory, checkpoint or results JSON")
    p.add_argument("--plot", default=None, metavar="OUT.png",
                   help="runs and checkpoints: write the run's training curves to this PNG")
    return parser


def _plugins() -> dict:
    """Commands other packages add (entry points of group `hjepa.commands`), by name: the
    benchmark suite's `hjepa bench` (`benchmarks.command`). Each is a module with `HELP`,
    `EXAMPLES`, `add_arguments(parser)` and `run(args, say, emit_json) -> int`."""
    import importlib.metadata

    found = {}
    for entry in importlib.metadata.entry_points(group="hjepa.commands"):
        try:
            found[entry.name] = entry.load()
        except ImportError:  # a package that declared a command and was removed since
            continue
    return found


def _add_parallel_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "devices and hosts",
        "Every visible device is used by default (episodes and batches split over them). "
        "Multi-host: the three flags below, or the environment variables "
        "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, or --distributed.")
    g.add_argument("--mesh", default=None, metavar="data=N,model=M",
                   help="device mesh (default: data = all devices, model = 1)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="address of process 0's coordinator (multi-host)")
    g.add_argument("--num-processes", type=int, default=None, metavar="N")
    g.add_argument("--process-id", type=int, default=None, metavar="I")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-host job detected by JAX (TPU pod slice, SLURM, Open MPI)")
    g.add_argument("--init-timeout", type=int, default=300, metavar="SECONDS",
                   help="how long to wait for the coordinator and the other processes "
                        "(default: %(default)s)")


def _setup_devices(args):
    """Joins a multi-host job if asked, then returns the mesh (None: one device, no flags).

    Reads the JAX_* environment variables (library code never does).
    """
    import os

    from hjepa import distributed

    def from_env(value, env):
        if value is not None or not os.environ.get(env):
            return value
        try:
            return int(os.environ[env])
        except ValueError:
            raise ValueError(f"{env}: expected an integer, got {os.environ[env]!r}") from None

    coordinator = args.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    num_processes = from_env(args.num_processes, "JAX_NUM_PROCESSES")
    process_id = from_env(args.process_id, "JAX_PROCESS_ID")
    explicit = any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))
    multi = explicit or args.distributed or coordinator is not None
    if multi:
        if args.distributed and not explicit:
            coordinator = num_processes = process_id = None
        try:
            distributed.initialize(coordinator, num_processes, process_id,
                                timeout_s=args.init_timeout, auto=args.distributed)
        except RuntimeError as error:
            raise ValueError(str(error)) from error
    import jax

    if args.mesh is None and not multi and jax.device_count() == 1:
        return None
    return distributed.make_mesh(args.mesh)


def _is_main() -> bool:
    import jax

    return jax.process_index() == 0


# Exit statuses (documented in `hjepa --help` and docs/reliability.md).
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_ENVIRONMENT, EXIT_BUG = 0, 1, 2, 3, 70
EXIT_INTERRUPTED = 130
EXIT_STATUSES = f"""exit status:
  {EXIT_OK}    done
  {EXIT_FAILED}    the run failed (e.g. training diverged; the last good checkpoint is kept)
  {EXIT_REFUSED}    refused: a bad argument, input file or state (the message names it;
       nothing was written), or a path in use by another hjepa process
  {EXIT_ENVIRONMENT}    the environment failed: permission denied, disk full, an I/O error
  {EXIT_BUG}   an internal error (a bug: rerun with --debug or HJEPA_DEBUG=1 for the traceback
       and report it)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); rerun the same command to resume
"""


def main(argv: list[str] | None = None) -> int:
    """Runs `hjepa ARGS`; returns the exit status. A user's mistake or a fault of the
    environment is one line on stderr, never a traceback (unless --debug or HJEPA_DEBUG=1)."""
    import os

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's usage line for a bad flag
        return exit_.code if isinstance(exit_.code, int) else EXIT_REFUSED
    if args.command is None:
        parser.print_help()
        return EXIT_REFUSED
    debug = getattr(args, "debug", False) or os.environ.get("HJEPA_DEBUG", "") not in ("", "0")
    try:
        commands = {"demo": _demo, "collect": _collect, "train": _train, "critic": _critic,
                    "goal-space": _goal_space, "skills": _skills, "distill": _distill,
                    "plan": _plan,
                    "inspect": _inspect}
        if args.command not in commands:
            return _plugins()[args.command].run(args, lambda text: _say(args, text), _emit_json)
        return commands[args.command](args)
    except KeyboardInterrupt:
        print(f"hjepa {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if debug:
            raise
        code, line = _error_line(error)
        print(f"hjepa {args.command}: {line}", file=sys.stderr)
        return code


def _error_line(error: Exception) -> tuple[int, str]:
    """(exit status, one line) for an exception that ends a command."""
    if isinstance(error, ValueError):
        return EXIT_REFUSED, f"error: {error}"
    if isinstance(error, OSError):
        where = " ".join(str(f) for f in (error.filename, error.filename2) if f)
        what = error.strerror or str(error) or type(error).__name__
        return EXIT_ENVIRONMENT, f"error: {what}{': ' + where if where else ''}"
    if isinstance(error, RuntimeError):  # hjepa.train.TrainingError and other faults of a run
        return EXIT_FAILED, f"failed: {error}"
    first = str(error).splitlines()[0][:300] if str(error) else ""
    return EXIT_BUG, (f"internal error: {type(error).__name__}: {first} (a bug in hjepa: "
                      "rerun with --debug or HJEPA_DEBUG=1 for the traceback, and report it)")


def _say(args, text: str) -> None:
    if not args.quiet and not args.json:
        print(text, flush=True)


def _emit_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _demo(args) -> int:
    from hjepa import demo

    config = demo.QUICK if args.quick else demo.DemoConfig()
    config = dataclasses.replace(config, seed=args.seed)
    results = demo.run_demo(config, args.out, overwrite=args.overwrite,
                            progress=not (args.quiet or args.json), log=lambda t: _say(args, t))
    if args.json:
        _emit_json(results)
    else:
        print(demo.format_results(results))
    return 0


def _collect(args) -> int:
    from hjepa import data
    from hjepa.tasks import make

    task = make(args.task, args.obs, image_size=args.image_size)
    length = task.episode_length if args.episode_length is None else args.episode_length
    policy = (data.default_policy(args.task) if args.policy == "auto"
              else data.POLICIES[args.policy]())
    config = data.CollectConfig(task=args.task, obs=args.obs, num_episodes=args.episodes,
                                episode_length=length, episodes_per_shard=args.episodes_per_shard,
                                seed=args.seed, image_size=args.image_size,
                                policy=policy)
    dataset = data.collect(config, args.out, overwrite=args.overwrite,
                           progress=not (args.quiet or args.json))
    summary = {"path": dataset.path, "task": dataset.task, "obs_kind": dataset.obs_kind,
               "episodes": dataset.num_episodes, "episode_length": dataset.episode_length,
               "shards": len(dataset.manifest["shards"])}
    if args.json:
        _emit_json(summary)
    else:
        _say(args, f"wrote {summary['episodes']} episodes in {summary['shards']} shards to "
                   f"{summary['path']}")
    return 0


def _loss_config(args, pixels: bool):
    """The JEPA loss settings of `hjepa train`'s flags, for a dataset of pixels or states."""
    from hjepa import losses

    # auto: pixel encoders learn from the prediction error on both sides
    stop = {"auto": not pixels, "stop": True, "pass": False}[args.target_gradient]
    return losses.LossConfig(stop_target_gradient=stop,
                             inverse_dynamics_weight=args.inverse_dynamics)


def _train(args) -> int:
    from hjepa import data, train
    from hjepa.model import ModelConfig

    mesh = _setup_devices(args)
    dataset = data.load(args.data)
    task = dataset.make_task()
    pixels = dataset.obs_kind == "pixels"
    encoder = args.encoder or ("conv" if pixels else "mlp")
    encoder_hidden = (args.hidden,) if encoder != "mlp" else (args.hidden, args.hidden)
    if not args.inverse_dynamics >= 0.0:
        raise ValueError(f"--inverse-dynamics: expected a weight >= 0, got {args.inverse_dynamics}")
    if args.inverse_dynamics and args.levels != 1:
        raise ValueError("--inverse-dynamics: trains flat models (--levels 1), got --levels "
                         f"{args.levels}")
    model_config = ModelConfig(obs_shape=tuple(task.obs_shape), action_size=task.action_size,
                               latent_size=args.latent, encoder_hidden=encoder_hidden,
                               predictor_hidden=(args.hidden, args.hidden), encoder=encoder,
                               frames=args.frames,
                               inverse_dynamics_hidden=(args.hidden,) if args.inverse_dynamics
                               else ())
    if args.levels != 1:
        from hjepa import hierarchy

        model_config = hierarchy.make_config(model_config, num_levels=args.levels,
                                             chunk=args.chunk, macro_size=args.macro_size,
                                             base_window=min(8, args.window))
    config = train.TrainConfig(steps=args.steps, batch_size=args.batch_size, window=args.window,
                               learning_rate=args.learning_rate,
                               checkpoint_every=args.checkpoint_every, seed=args.seed,
                               log_every=min(250, args.checkpoint_every),
                               loss=_loss_config(args, pixels))
    train.fit(model_config, config, dataset, args.run_dir, overwrite=args.overwrite,
              progress=not (args.quiet or args.json), mesh=mesh)
    if not _is_main():
        return 0
    from hjepa import io as hjepa_io

    last = hjepa_io.last_metrics(args.run_dir)
    curves = None
    if last:
        from hjepa import visualize

        curves = visualize.plot_training_curves(args.run_dir)
    if args.json:
        _emit_json({"run_dir": args.run_dir, "final_metrics": last, "training_curves": curves})
    else:
        _say(args, f"trained {config.steps} steps; final metrics: "
                   + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step"))
        if curves is not None:
            _say(args, f"wrote {curves}")
    return 0


def _flat_run_and_its_data(args, flat_only: str):
    """(model config, params, dataset) of `--run-dir` and `--data`: a flat run and the kind
    of data it was trained on; ValueError naming `flat_only` for a hierarchy."""
    from hjepa import data, hierarchy, train

    model_config, _, params = train.load_run(args.run_dir)
    if isinstance(model_config, hierarchy.HierarchyConfig):
        raise ValueError(f"--run-dir: {args.run_dir} holds a hierarchical model; {flat_only}")
    dataset = data.load(args.data)
    record = train.read_run_record(args.run_dir)["dataset"]
    if (dataset.task, dataset.obs_kind) != (record["task"], record["obs_kind"]):
        raise ValueError(f"--data: the run was trained on {record['task']!r} "
                         f"({record['obs_kind']}), got a dataset of {dataset.task!r} "
                         f"({dataset.obs_kind})")
    return model_config, params, dataset


def _critic(args) -> int:
    import functools
    import os

    from hjepa import critic as critic_lib
    from hjepa import model as model_lib
    from hjepa import train
    from hjepa.checkpoint import read_json

    model_config, params, dataset = _flat_run_and_its_data(
        args, "`hjepa critic` trains critics of flat models (for hierarchies: "
              "benchmarks.hierarchy)")
    config = critic_lib.CriticConfig(embedding_size=args.embedding, max_steps=args.max_steps,
                                     steps=args.steps, window=args.window, seed=args.seed)
    config.validate()
    if args.window > dataset.episode_length:
        raise ValueError(f"--window: expected at most the dataset's episode length "
                         f"{dataset.episode_length}, got {args.window}")
    existing = os.path.join(args.run_dir, "critic.json")
    if os.path.exists(existing) and not args.overwrite:
        kept = critic_lib.config_from_dict(read_json(existing)["config"])
        if kept != config:
            raise ValueError(f"--run-dir: {args.run_dir} holds a critic of another "
                             "configuration; pass --overwrite to replace it")

    from hjepa import ownership

    with ownership.locked(args.run_dir, name="--run-dir"):
        _, seconds = train.fit_critic_for_run(
            config, functools.partial(model_lib.encode, model_config), params, dataset,
            args.run_dir, latent_size=model_config.latent_size,
            log=lambda line: _say(args, line))
    record = read_json(existing)
    summary = {"run_dir": args.run_dir, "critic": record["config"], "seconds": seconds,
               "final_metrics": record["history"][-1]}
    if args.json:
        _emit_json(summary)
    else:
        _say(args, f"critic in {args.run_dir} ({seconds:.0f} s); final metrics: "
                   + ", ".join(f"{k}={v:.4g}" for k, v in summary["final_metrics"].items()
                               if k != "step"))
    return 0


def _goal_space(args) -> int:
    import functools

    from hjepa import goal_space, ownership, train
    from hjepa import model as model_lib

    model_config, params, dataset = _flat_run_and_its_data(
        args, "`hjepa goal-space` trains goal-space models of flat models")
    if not dataset.has_positions:
        raise ValueError(f"--data: {dataset.path} records no goal-space positions (collected "
                         "before hjepa recorded them); collect it again")
    config = GoalSpaceConfig(steps=args.steps, max_steps=args.max_steps, window=args.window,
                             stride=args.stride, seed=args.seed)
    config.validate()
    if args.window * args.stride > dataset.episode_length:
        raise ValueError(f"--window: expected at most the dataset's episode length "
                         f"{dataset.episode_length} // --stride {args.stride}, got "
                         f"{args.window}")
    _refuse_shipped_run(args.run_dir)
    if not args.overwrite:
        goal_space.kept_record(args.run_dir, config)  # raises for another configuration
    with ownership.locked(args.run_dir, name="--run-dir"):
        _, record = train.fit_goal_space_for_run(
            config, functools.partial(model_lib.encode, model_config), params, dataset,
            args.run_dir, log=lambda line: _say(args, line))
    summary = {"run_dir": args.run_dir, "goal_space": dataclasses.asdict(config),
               "seconds": record["seconds"], "final_metrics": record["history"][-1]}
    if args.json:
        _emit_json(summary)
    else:
        _say(args, f"goal-space model in {args.run_dir} ({record['seconds']:.0f} s); final "
                   "metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in
                                           summary["final_metrics"].items() if k != "step"))
    return 0


def _skills(args) -> int:
    import functools

    from hjepa import model as model_lib
    from hjepa import ownership, train
    from hjepa import skills as skills_lib
    from hjepa.tasks import make

    model_config, params, dataset = _flat_run_and_its_data(
        args, "`hjepa skills` learns skills over flat models")
    config = SkillsConfig(chunk=args.chunk, macro_size=args.macro_size,
                          kl_weight=args.kl_weight, steps=args.steps, seed=args.seed)
    config.validate()
    if args.chunk > dataset.episode_length:
        raise ValueError(f"--chunk: expected at most the dataset's episode length "
                         f"{dataset.episode_length}, got {args.chunk}")
    task = make(dataset.task)
    _refuse_shipped_run(args.run_dir)
    if not args.overwrite:
        skills_lib.kept_record(args.run_dir, config)  # raises for another configuration
    with ownership.locked(args.run_dir, name="--run-dir"):
        _, record = train.fit_skills_for_run(
            config, functools.partial(model_lib.encode, model_config), params, dataset,
            args.run_dir, task.action_low, task.action_high, log=lambda line: _say(args, line))
    summary = {"run_dir": args.run_dir, "skills": dataclasses.asdict(config),
               "seconds": record["seconds"], "final_metrics": record["history"][-1]}
    if args.json:
        _emit_json(summary)
    else:
        _say(args, f"skills in {args.run_dir} ({record['seconds']:.0f} s); final metrics: "
                   + ", ".join(f"{k}={v:.4g}" for k, v in summary["final_metrics"].items()
                               if k != "step"))
    return 0


def _refuse_shipped_run(run_dir: str) -> None:
    """ValueError for a run directory shipped with the package: hjepa never writes there."""
    import os

    from hjepa import pretrained

    shipped = os.path.realpath(pretrained.HERE) + os.sep
    if os.path.realpath(run_dir).startswith(shipped):
        raise ValueError(f"--run-dir: {run_dir} is a run shipped with hjepa; copy it first "
                         "(e.g. `cp -r` it to runs/NAME) and write into the copy")


def _distill(args) -> int:
    import dataclasses

    from hjepa import distill, hierarchy, ownership, train
    from hjepa.tasks import make

    _refuse_shipped_run(args.run_dir)
    model_config, _, params = train.load_run(args.run_dir)
    if isinstance(model_config, hierarchy.HierarchyConfig):
        raise ValueError(f"--run-dir: {args.run_dir} holds a hierarchical model; `hjepa "
                         "distill` distils the planner of a flat model")
    trained_on = train.read_run_record(args.run_dir)["dataset"]
    obs_kind = trained_on.get("obs_kind", "state")
    size = model_config.obs_shape[0] if obs_kind == "pixels" else None
    task = make(trained_on["task"], obs_kind, image_size=size)
    config = PolicyConfig(rounds=args.rounds, episodes=args.episodes, steps=args.steps,
                          expert_share=args.expert_share, seed=args.seed)
    config.validate()
    planner = PlannerConfig()
    if args.horizon is not None:
        planner = planner.replace(horizon=args.horizon)
    planner = planner.replace(**{name: getattr(args, flag) for flag, name in PLAN_FLAGS.items()})
    planner.validate()
    if not args.overwrite and distill.kept_record(args.run_dir, config, planner) is not None:
        _say(args, f"policy in {args.run_dir}: already distilled with this configuration")
        return 0
    with ownership.locked(args.run_dir, name="--run-dir"):
        params_policy, record = distill.distill(task, model_config, params, planner, config,
                                                log=lambda line: _say(args, line))
        distill.save(args.run_dir, config, planner, params_policy, record)
    summary = {"run_dir": args.run_dir, "policy": dataclasses.asdict(config), **record}
    if args.json:
        _emit_json(summary)
    else:
        _say(args, f"policy in {args.run_dir} ({record['seconds']:.0f} s); final loss "
                   f"{record['rounds'][-1]['final_loss']:.4g}")
    return 0


# `hjepa plan` flags (dest names) -> where they live in a `hjepa.configs.PlannerConfig`.
PLAN_FLAGS = {"samples": "num_samples", "iterations": "iterations",
              "temperature": "temperature", "noise_std": "noise_std",
              "noise_decay": "noise_decay"}


def _flag_values(planner) -> dict:
    """The `hjepa plan` flag values of a `PlannerConfig` (options it does not set: None)."""
    options, high = planner.kwargs(), planner.high_kwargs()
    values = {flag: options.get(name) for flag, name in PLAN_FLAGS.items()}
    return {**values, "horizon": planner.horizon, "high_horizon": planner.high_horizon,
            "high_noise_std": high.get("noise_std"), "snap_radius": planner.snap_radius,
            "critic": planner.critic}


def _planner_and_options(args) -> tuple:
    """The planner function and its options: MPPI with every option filled in (a pretrained
    run's measured settings, else `PlannerConfig`'s defaults); another planner with the option
    flags given (its own defaults for the rest)."""
    import inspect


    fn = PlannerConfig(planner=args.planner).function()
    if args.elites is not None and args.planner != "cem":
        raise ValueError(f"--elites: only --planner cem keeps elites, got --planner "
                         f"{args.planner}")
    if args.planner == "mppi":
        return fn, {name: getattr(args, flag) for flag, name in PLAN_FLAGS.items()}
    accepted = [name for name, p in inspect.signature(fn).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY]
    options = {}
    for flag in args.given_flags:
        name = PLAN_FLAGS[flag]
        if name not in accepted:
            raise ValueError(f"--{flag.replace('_', '-')}: the {args.planner} planner takes no "
                             f"{name}; its options: {sorted(accepted)}")
        options[name] = getattr(args, flag)
    if args.elites is not None:
        options["num_elites"] = args.elites
    return fn, options


def _plan_settings(args) -> None:
    """Fills the planner flags not given: a pretrained run's measured settings, else defaults."""
    args.given_flags = [flag for flag in PLAN_FLAGS if getattr(args, flag) is not None]
    args.given_horizon = args.horizon is not None
    if args.task_name is not None:
        if args.task is not None and args.task != args.task_name:
            raise ValueError(f"TASK: given twice, as {args.task_name!r} and --task {args.task!r}")
        args.task = args.task_name

    measured = PlannerConfig()  # the defaults, in one place
    if args.pretrained is not None:
        from hjepa import pretrained

        if args.pretrained == "":
            args.pretrained = pretrained.for_task(args.task)
        if args.run_dir is not None:
            raise ValueError("--pretrained: give --pretrained or --run-dir, not both")
        args.run_dir = pretrained.path(args.pretrained)
        measured = pretrained.PRETRAINED[args.pretrained].plan
    for name, value in _flag_values(measured).items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _check_pictures(args) -> None:
    """Checks the --render / --gif flags before any work is done."""
    from hjepa import visualize

    if args.render is None and args.gif is None:
        return
    if args.render_episodes < 1 or args.render_episodes > args.episodes:
        raise ValueError(f"--render-episodes: expected 1 to --episodes ({args.episodes}), got "
                         f"{args.render_episodes}")
    if args.render is not None:
        visualize.check_output_path(args.render, ".html", overwrite=args.overwrite,
                                    name="--render")
    if args.gif is not None:
        visualize.check_output_path(args.gif, ".gif", overwrite=args.overwrite, name="--gif")


def _with_goals(args, task):
    """`task` with the start/goal pairs `--goals` asks for (`hjepa.tasks.trajectory_goals`)."""
    if args.goals == "task":
        for flag in ("goal_offset", "budget"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')}: goes with --goals trajectory")
        return task
    from hjepa.tasks import trajectory_goals

    options = {name: getattr(args, flag) for name, flag in
               (("offset", "goal_offset"), ("budget", "budget")) if getattr(args, flag) is not None}
    return trajectory_goals.trajectory_goals(task, **options)


def _picture_task_checks(args, task) -> None:
    """Raises ValueError when the pictures asked for cannot be made of this plan."""
    if args.gif is not None and task.obs_kind != "pixels":
        raise ValueError(f"--gif: needs pixel observations; the task {task.name!r} has "
                         f"{task.obs_kind} observations (plan a pixel run, or use --render)")


def _recorder(args, task):
    """What the episodes must record for --render / --gif (None: nothing)."""
    if args.render is None and args.gif is None:
        return None
    from hjepa import visualize

    return visualize.FrameRecorder(task, poses=args.render is not None,
                                   observations=args.gif is not None)


def _write_pictures(args, task, result) -> dict:
    """Writes the --render / --gif files of the first --render-episodes episodes."""
    import numpy as np

    from hjepa import visualize

    written = {}
    count = args.render_episodes
    if args.render is not None:
        states = []
        for i in range(count):
            states += visualize.episode_states(visualize.take(result.episodes.state, i),
                                               visualize.take(result.records["pose"], i))
        written["render"] = visualize.write_html(args.render, task.system, states,
                                                 overwrite=args.overwrite)
    if args.gif is not None:
        size = task.obs_shape[0]
        frames = np.concatenate([
            visualize.gif_frames(result.records["obs"][i], result.episodes.goal.obs[i],
                                 scale=max(1, 128 // size)) for i in range(count)])
        written["gif"] = visualize.write_gif(args.gif, frames, overwrite=args.overwrite)
    return written


def _skills_actor(args, model_config, goal_cost) -> tuple:
    """(`hjepa.skills.Act`, skills params) of `--run-dir` for `hjepa plan --skills`: the plan
    flags given set its plan over skills, its defaults the rest. The skills act through
    `hjepa.evaluate.evaluate_skills` (held for their chunk, replanned every --replan-every
    steps)."""
    from hjepa import skills as skills_lib

    if args.goal_space is None:
        raise ValueError("--skills: plans skills toward goals in the task's goal space; pass "
                         "--goal-space steps (or distance)")
    if args.policy or args.prior:
        raise ValueError("--skills: the skills' decoder acts; not with --policy or --prior")
    if args.planner != "mppi":
        raise ValueError(f"--skills: skills are planned with mppi, got --planner {args.planner}")
    config, params = skills_lib.load(args.run_dir, model_config.latent_size)
    if params["action_low"].shape[0] != model_config.action_size:
        raise ValueError(f"--skills: the skills in {args.run_dir} act with "
                         f"{params['action_low'].shape[0]} actions, the run's model with "
                         f"{model_config.action_size}")
    options = {PLAN_FLAGS[flag]: getattr(args, flag) for flag in args.given_flags}
    if args.given_horizon:
        options["horizon"] = args.horizon
    return skills_lib.Act(config, goal_cost[0], **options), params


def _plan(args) -> int:
    import jax

    from hjepa import pipeline, splits, train
    from hjepa.tasks import make

    _plan_settings(args)
    if args.pretrained is not None:
        from hjepa import pretrained

        _say(args, f"pretrained {args.pretrained}: {pretrained.describe(args.pretrained)}")
    _check_pictures(args)
    mesh = _setup_devices(args)
    pairs = splits.describe(args.split if args.seed is None else None,
                            splits.seed(args.split) if args.seed is None else args.seed)
    args.seed = pairs["seed"]
    _, options = _planner_and_options(args)
    for flag, name in (("prior_samples", "proposal_samples"),
                       ("prior_noise_std", "proposal_noise_std")):
        if getattr(args, flag) is not None:
            if not args.prior:
                raise ValueError(f"--{flag.replace('_', '-')}: goes with --prior")
            if args.planner not in ("mppi", "cem"):
                raise ValueError(f"--{flag.replace('_', '-')}: --planner {args.planner} takes "
                                 "no policy rollouts (mppi and cem do)")
            options[name] = getattr(args, flag)
    if args.prior and args.planner in ("mppi", "cem"):
        options.setdefault("proposal_samples", 8)
    if args.prior and args.planner == "beam":
        raise ValueError("--prior: beam search takes no proposal (mppi, cem and gd do)")
    settings = PlannerConfig(  # what the flags say, in the one planner config
        planner=args.planner, horizon=args.horizon, options=tuple(sorted(options.items())),
        high_horizon=args.high_horizon,
        high_options=(("noise_decay", 1.0), ("noise_std", args.high_noise_std)),
        snap_radius=args.snap_radius)
    if args.oracle:
        if args.task is None:
            raise ValueError("--task: required with --oracle (e.g. --task reacher)")
        if args.critic:
            raise ValueError("--critic: a critic costs plans of a learned model, not --oracle")
        if args.skills or args.replan_every is not None:
            raise ValueError("--skills: skills are learned over a run's latents, not --oracle")
        task = _with_goals(args, make(args.task))
        _picture_task_checks(args, task)
        result = pipeline.evaluate_oracle(task, jax.random.key(args.seed), settings,
                                          num_episodes=args.episodes, mesh=mesh,
                                          record=_recorder(args, task))
        model, hierarchical = "oracle", False
    else:
        if args.run_dir is None:
            raise ValueError("--run-dir: required to plan with a learned model (or pass --oracle)")


        trained_on = train.read_run_record(args.run_dir)["dataset"]
        task_name = trained_on["task"]
        if args.task is not None and args.task != task_name:
            raise ValueError(f"--task: the run in {args.run_dir} was trained on {task_name!r}, "
                             f"got --task {args.task!r}")
        model_config, _, params = train.load_run(args.run_dir, task=task_name, mesh=mesh)
        obs_kind = trained_on.get("obs_kind", "state")
        size = model_config.obs_shape[0] if obs_kind == "pixels" else None
        task = _with_goals(args, make(task_name, obs_kind, image_size=size))
        model = "learned"
        from hjepa import hierarchy

        hierarchical = isinstance(model_config, hierarchy.HierarchyConfig)
        if hierarchical and args.flat:
            model, model_config, params = "learned, level 1", model_config.base, params["base"]
            hierarchical = False
        elif hierarchical:
            model = f"learned, {model_config.num_levels} levels"
        _picture_task_checks(args, task)
        critic = None
        if args.goal_space is not None and (args.critic or hierarchical):
            raise ValueError("--goal-space: plans a flat model with its goal-space model; "
                             "not with --critic, and for hierarchies pass --flat")
        if args.critic:
            if hierarchical:
                raise ValueError("--critic: plans flat models; pass --flat to plan level 1 alone "
                                 "(its critic comes from benchmarks.hierarchy)")
            from hjepa import critic as critic_lib

            critic = critic_lib.load(args.run_dir, model_config.latent_size)
            model = f"{model}, critic"
        if args.goal_space is not None:
            from hjepa import goal_space

            gs_config, position_size, gs_params = goal_space.load(args.run_dir,
                                                                  model_config.latent_size)
            critic = (goal_space.GoalSpaceCost(gs_config, position_size, args.goal_space),
                      gs_params)
            model = f"{model}, goal space ({args.goal_space})"
        policy = skilled = None
        if args.skills:
            skilled = _skills_actor(args, model_config, critic)
            model = f"{model}, skills"
        elif args.replan_every is not None:
            raise ValueError("--replan-every: goes with --skills")
        if args.policy or args.prior:
            if args.policy and args.prior:
                raise ValueError("--policy: acts with the policy alone; --prior plans with it; "
                                 "give one")
            if hierarchical:
                raise ValueError("--policy/--prior: the distilled policy acts on a flat model; "
                                 "pass --flat to plan level 1 alone")
            from hjepa import distill
            from hjepa import policy as policy_lib

            policy_config, policy_params = distill.load(
                args.run_dir, model_config.latent_size, model_config.action_size)
            policy = (policy_lib.Act.of(policy_config, task.action_low, task.action_high),
                      policy_params)
            model = f"{model}, {'policy alone' if args.policy else 'policy prior'}"
        if hierarchical and args.planner != "mppi":
            raise ValueError(f"--planner: hierarchical runs plan with mppi at every level, "
                             f"got {args.planner!r} (pass --flat to plan level 1 alone)")
        if skilled is not None:
            from hjepa import evaluate as evaluate_lib

            result = evaluate_lib.evaluate_skills(
                task, jax.random.key(args.seed), model_config, params, *skilled, critic[1],
                num_episodes=args.episodes, replan_every=args.replan_every, mesh=mesh,
                record=_recorder(args, task))
        else:
            result = pipeline.evaluate_learned(task, jax.random.key(args.seed), model_config,
                                               params, settings, num_episodes=args.episodes,
                                               critic=critic, mesh=mesh,
                                               record=_recorder(args, task), policy=policy,
                                               policy_alone=args.policy)
    if not _is_main():
        return 0
    if args.goals == "trajectory":
        from hjepa.tasks import trajectory_goals

        pairs.update(goals="trajectory", goal_offset=task.offset,
                     idle_success_rate=trajectory_goals.trivial_share(
                         task, jax.random.key(args.seed), args.episodes))
    summary = {"task": task.name, "model": model, **result.summary(), **pairs,
               "planner": args.planner, "horizon": args.horizon, **options,
               "devices": jax.device_count()}
    if args.skills:
        act = skilled[0]
        summary.update(planner="mppi over skills", replan_every=args.replan_every or 1,
                       horizon=act.horizon,
                       num_samples=act.num_samples, iterations=act.iterations,
                       temperature=act.temperature, noise_std=act.noise_std,
                       noise_decay=act.noise_decay, skill_chunk=act.config.chunk,
                       predictor_calls_per_step=act.predictor_calls)
    if hierarchical:
        summary.update(high_horizon=args.high_horizon, high_noise_std=args.high_noise_std,
                       snap_radius=args.snap_radius)
    if args.pretrained is not None:
        summary["pretrained"] = args.pretrained
    written = _write_pictures(args, task, result)
    summary.update(written)
    if args.json:
        _emit_json(summary)
    else:
        print(f"{task.name} / {model} / {args.planner}: success "
              f"{100 * summary['success_rate']:.1f}% on "
              f"{summary['episodes']} episodes ({pairs['split'] or 'seed'} pairs, seed "
              f"{pairs['seed']}), mean final distance "
              f"{summary['mean_final_distance']:.4f}, {summary['ms_per_step_amortised']:.2f} ms "
              "per MPC step (amortised over the batch)")
        if args.goals == "trajectory":
            print(f"goals {task.offset} steps ahead along held-out trajectories, "
                  f"{task.episode_length} steps per episode; doing nothing succeeds in "
                  f"{100 * pairs['idle_success_rate']:.1f}% of these pairs")
        for path in written.values():
            _say(args, f"wrote {path}")
    return 0


def _inspect(args) -> int:
    from hjepa import inspection

    if args.plot is not None:
        from hjepa import visualize

        visualize.check_output_path(args.plot, ".png", name="--plot")
    summary = inspection.summarize(args.path)
    if args.plot is not None:
        if summary["kind"] not in ("run", "checkpoint"):
            raise ValueError(f"--plot: plots a training run's curves; {args.path} is a "
                             f"{summary['kind']}")
        run_dir = summary.get("run_dir", summary["path"])
        summary["training_curves"] = visualize.plot_training_curves(run_dir, args.plot,
                                                                     overwrite=False)
    if args.json:
        _emit_json(summary)
    elif not args.quiet:
        print(inspection.format_summary(summary))
        if args.plot is not None:
            print(f"wrote {summary['training_curves']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
