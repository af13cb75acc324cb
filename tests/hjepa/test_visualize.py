"""hjepa.visualize and the CLI's pictures: Brax's HTML viewer of planned episodes
(`hjepa plan --render`), training curves (`hjepa train`, `hjepa inspect --plot`) and GIFs of
pixel observations beside the goal (`hjepa plan --gif`)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax import math as brax_math
from cli_helpers import run_cli
from PIL import Image

from hjepa import cli, evaluate, splits, tasks, visualize
from hjepa import model as model_lib
from hjepa.model import ModelConfig
from hjepa.tasks import reacher as reacher_lib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def viewer_json(path) -> dict:
    """The system and trajectory JSON inside a page written by `brax.io.html.render`."""
    with open(path) as f:
        text = f.read()
    match = re.search(r'var system = "([A-Za-z0-9+/=]+)"', text)
    assert match, "no viewer JSON in the page"
    return json.loads(zlib.decompress(base64.b64decode(match.group(1))))


def few_color_images(key, shape, colors=5) -> np.ndarray:
    """uint8 images of `shape` [..., 3k] drawn from `colors` grey levels (a GIF stores them
    exactly)."""
    levels = np.linspace(0, 255, colors).astype(np.uint8)
    return levels[np.asarray(jax.random.randint(key, shape, 0, colors))]


# ----------------------------------------------------------------------------- paths


def test_check_output_path_refuses_bad_paths(tmp_path):
    good = str(tmp_path / "out.html")
    assert visualize.check_output_path(good, ".html") == good
    with pytest.raises(ValueError, match=r"--render: expected a file name ending in \.html"):
        visualize.check_output_path(str(tmp_path / "out.htm"), ".html", name="--render")
    with pytest.raises(ValueError, match="no-such-dir.*does not exist"):
        visualize.check_output_path(str(tmp_path / "no-such-dir" / "a.gif"), ".gif")
    (tmp_path / "old.gif").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists.*--overwrite"):
        visualize.check_output_path(str(tmp_path / "old.gif"), ".gif")
    with pytest.raises(ValueError, match="exists and hjepa did not write it"):
        visualize.check_output_path(str(tmp_path / "old.gif"), ".gif", overwrite=True)
    assert (tmp_path / "old.gif").read_bytes() == b"x"
    (tmp_path / "ours.gif").write_bytes(b"GIF89a " + visualize.WRITTEN_BY)
    assert visualize.check_output_path(str(tmp_path / "ours.gif"), ".gif", overwrite=True)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        visualize.check_output_path(str(tmp_path / "dir.png"), ".png", overwrite=True)


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = str(tmp_path / "a.html")
    visualize.write_atomic(path, "first")
    visualize.write_atomic(path, "second é")
    with open(path, encoding="utf-8") as f:
        assert f.read() == "second é"
    assert os.listdir(tmp_path) == ["a.html"]


# ----------------------------------------------------------------------------- GIF


def test_gif_frames_put_the_observation_beside_the_goal():
    obs = few_color_images(jax.random.key(0), (4, 8, 8, 6))
    goal = few_color_images(jax.random.key(1), (8, 8, 6))
    frames = visualize.gif_frames(obs, goal)
    bar = 2  # max(2, 8 // 16)
    assert frames.shape == (4, 8 + bar, 16, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[:, :8, :8], obs[..., :3])  # now, not one step ago
    np.testing.assert_array_equal(frames[:, :8, 8:], np.broadcast_to(goal[..., :3], (4, 8, 8, 3)))
    # the progress bar grows to the full width and no two consecutive frames are equal
    assert (frames[-1, 8:] != 255).any(axis=-1).all()
    assert all((frames[t] != frames[t + 1]).any() for t in range(3))
    big = visualize.gif_frames(obs, goal, scale=3)
    assert big.shape == (4, 3 * (8 + bar), 48, 3)
    np.testing.assert_array_equal(big[:, ::3, ::3], frames)


@pytest.mark.parametrize("bad, match", [
    (dict(observations=np.zeros((2, 8, 8, 3), np.float32)), "observations: expected uint8"),
    (dict(observations=np.zeros((2, 8, 8, 1), np.uint8)), r"C >= 3"),
    (dict(goal=np.zeros((4, 4, 3), np.uint8)), r"goal: expected the observations' shape"),
    (dict(scale=0), "scale: expected a positive integer"),
])
def test_gif_frames_rejects_bad_input(bad, match):
    args = dict(observations=np.zeros((2, 8, 8, 3), np.uint8), goal=np.zeros((8, 8, 3), np.uint8),
                scale=1)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        visualize.gif_frames(args["observations"], args["goal"], scale=args["scale"])


def test_write_gif_round_trips_every_frame(tmp_path):
    obs = few_color_images(jax.random.key(2), (5, 8, 8, 3))
    frames = visualize.gif_frames(obs, obs[0])
    path = visualize.write_gif(str(tmp_path / "a.gif"), frames, fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        assert gif.info["duration"] == 200 and gif.info["loop"] == 0
        for t in range(5):
            gif.seek(t)
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[t])
    # many colours: quantised, but every frame is kept
    noisy = np.asarray(jax.random.randint(jax.random.key(3), (3, 20, 20, 3), 0, 256), np.uint8)
    frames = visualize.gif_frames(noisy, noisy[0])
    with Image.open(visualize.write_gif(str(tmp_path / "b.gif"), frames)) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="exists"):
        visualize.write_gif(path, frames)
    with pytest.raises(ValueError, match="fps"):
        visualize.write_gif(path, frames, fps=0, overwrite=True)
    with pytest.raises(ValueError, match=r"frames: expected uint8 \[T, H, W, 3\]"):
        visualize.write_gif(path, frames[0], overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "b.gif"]


IMAGE = 16
PIXEL_MODEL = ModelConfig(obs_shape=(IMAGE, IMAGE, 3), action_size=2, latent_size=8,
                          encoder="conv", conv_channels=(8, 16), encoder_hidden=(32,),
                          predictor_hidden=(32, 32))


def test_cli_gif_writer_puts_each_episodes_observations_beside_its_goal(tmp_path):
    """`hjepa plan --gif`'s writer on recorded observations [N, T, S, S, C]: the first
    --render-episodes episodes one after another, upsampled to >= 128 pixels a side."""
    obs = few_color_images(jax.random.key(4), (3, 5, IMAGE, IMAGE, 6))
    goals = few_color_images(jax.random.key(5), (3, IMAGE, IMAGE, 6))
    result = argparse.Namespace(records={"obs": obs},
                                episodes=argparse.Namespace(goal=argparse.Namespace(obs=goals)))
    task = argparse.Namespace(obs_shape=(IMAGE, IMAGE, 6))
    args = argparse.Namespace(render=None, gif=str(tmp_path / "px.gif"), render_episodes=2,
                              overwrite=False)
    assert cli._write_pictures(args, task, result) == {"gif": args.gif}
    scale = 128 // IMAGE
    with Image.open(args.gif) as gif:
        assert gif.n_frames == 10  # 2 episodes x 5 steps
        for t, (i, step) in ((0, (0, 0)), (7, (1, 2))):
            gif.seek(t)
            frame = np.asarray(gif.convert("RGB"))
            assert frame.shape == (scale * (IMAGE + 2), 2 * scale * IMAGE, 3)
            np.testing.assert_array_equal(frame[:scale * IMAGE:scale, :scale * IMAGE:scale],
                                          obs[i, step, ..., :3])
            np.testing.assert_array_equal(frame[:scale * IMAGE:scale, scale * IMAGE::scale],
                                          goals[i, ..., :3])


@pytest.mark.slow  # ~35 s on 2 cores; the writer above and the --render test cover the parts
def test_plan_gif_of_a_pixel_model_shows_each_steps_observation(tmp_path):
    """Closed-loop planning on two_rooms pixels with an (untrained) conv model, recording the
    observations; the CLI's writer puts them beside the goal in a GIF."""
    task = tasks.make("two_rooms", "pixels", image_size=IMAGE)
    params = model_lib.init(PIXEL_MODEL, jax.random.key(0))
    result = evaluate.evaluate(
        task, jax.random.key(5), num_episodes=2, model_config=PIXEL_MODEL, params=params,
        planner_options={"num_samples": 4, "iterations": 1}, horizon=2, num_steps=6,
        record=visualize.FrameRecorder(task, poses=False, observations=True))
    obs = result.records["obs"]
    assert obs.shape == (2, 6, IMAGE, IMAGE, 3) and obs.dtype == np.uint8
    # the recorded observations are the task's observations of the episode: the last one
    # shows the arm where the final distance was measured, i.e. it moved from the start
    start_obs = np.asarray(jax.jit(jax.vmap(task.observe))(
        jax.tree.map(jnp.asarray, result.episodes.state)))
    assert (obs[:, -1] != start_obs).any()
    args = argparse.Namespace(render=None, gif=str(tmp_path / "px.gif"), render_episodes=2,
                              overwrite=False)
    written = cli._write_pictures(args, task, result)
    assert written == {"gif": args.gif}
    scale = 128 // IMAGE
    with Image.open(args.gif) as gif:
        assert gif.n_frames == 12  # 2 episodes x 6 steps
        first = np.asarray(gif.convert("RGB"))
    assert first.shape == (scale * (IMAGE + 2), 2 * scale * IMAGE, 3)
    left = first[:scale * IMAGE:scale, :scale * IMAGE:scale]
    right = first[:scale * IMAGE:scale, scale * IMAGE::scale]
    goal = result.episodes.goal.obs[0, ..., :3]
    colors = np.unique(np.concatenate([obs[..., :3].reshape(-1, 3), goal.reshape(-1, 3)]),
                       axis=0)
    if len(colors) <= 250:  # the renderer's few flat colours (and the bar's): stored exactly
        np.testing.assert_array_equal(left, obs[0, 0, ..., :3])
        np.testing.assert_array_equal(right, goal)
    else:
        assert np.abs(left.astype(int) - obs[0, 0, ..., :3]).mean() < 8
        assert np.abs(right.astype(int) - goal).mean() < 8


# ----------------------------------------------------------------------------- HTML


def test_plan_render_writes_the_viewer_of_the_executed_episodes(capsys, tmp_path, tiny_run,
                                                                reacher):
    run_dir, _ = tiny_run
    out = str(tmp_path / "reacher.html")
    code, stdout, err = run_cli(["plan", "--run-dir", run_dir, "--episodes", "2", "--samples",
                                 "16", "--horizon", "4", "--iterations", "1", "--render", out,
                                 "--render-episodes", "2", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["render"] == out
    viewer = viewer_json(out)
    frames = viewer["states"]["x"]
    steps = reacher.episode_length
    assert len(frames) == 2 * (steps + 1)  # each episode: its start and every step
    links = len(viewer["link_names"])
    assert all(np.shape(f["pos"]) == (links, 3) and np.shape(f["rot"]) == (links, 4)
               for f in frames)
    # the frames are the episodes that were planned: same starts, and the fingertip's last
    # position is where the final distance was measured
    reset_key = jax.random.split(splits.key("test"))[0]  # hjepa plan's default pairs
    episodes = jax.jit(jax.vmap(reacher.reset))(jax.random.split(reset_key, 2))  # as run_episodes
    forearm = viewer["link_names"].index("body1")  # the fingertip is fixed to its end

    def fingertip(frame):
        tip = brax_math.rotate(jnp.array([reacher_lib.LINK1_LENGTH, 0.0, 0.0]),
                               jnp.asarray(frame["rot"][forearm]))
        return np.asarray(frame["pos"][forearm])[:2] + np.asarray(tip)[:2]

    distances = []
    for i in range(2):
        start, last = frames[i * (steps + 1)], frames[i * (steps + 1) + steps]
        np.testing.assert_allclose(start["pos"], episodes.state.x.pos[i], atol=1e-6)
        np.testing.assert_allclose(fingertip(start), reacher.position(
            jax.tree.map(lambda a, i=i: a[i], episodes.state)), atol=1e-5)
        distances.append(np.linalg.norm(fingertip(last) - episodes.goal.position[i]))
    np.testing.assert_allclose(np.mean(distances), summary["mean_final_distance"], rtol=1e-4,
                               atol=1e-5)
    assert np.ptp([fingertip(f) for f in frames[:steps + 1]], axis=0).max() > 1e-3  # it moved
    # again: refused without --overwrite, before any planning
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--render", out], capsys)
    assert code == 2 and "--overwrite" in err


def test_episode_states_of_a_windy_cliff_state(tmp_path):
    """Tasks whose env state wraps the physics (windy_cliff) give the same viewer frames."""
    task = tasks.make("windy_cliff")
    episode = jax.jit(task.reset)(jax.random.key(0))
    poses = jax.tree.map(lambda a: jnp.stack([a, a + 0.0]), visualize.pose(episode.state))
    states = visualize.episode_states(episode.state, poses)
    assert len(states) == 3
    path = visualize.write_html(str(tmp_path / "w.html"), task.system, states)
    assert len(viewer_json(path)["states"]["x"]) == 3
    with pytest.raises(ValueError, match=r"poses: expected x.pos of shape \[T, L, 3\]"):
        visualize.episode_states(episode.state, visualize.pose(episode.state))
    with pytest.raises(ValueError, match="states: expected at least one state"):
        visualize.html(task.system, [])


@pytest.mark.parametrize("flags, match", [
    (["--render", "out.txt"], r"--render: expected a file name ending in \.html"),
    (["--gif", "nodir/out.gif"], r"--gif: the directory .*nodir does not exist"),
    (["--render", "x.html", "--render-episodes", "3"], r"--render-episodes: expected 1 to "),
])
def test_plan_picture_flags_are_checked_first(capsys, tmp_path, monkeypatch, flags, match):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["plan", "--task", "reacher", "--oracle", "--episodes", "2",
                            *flags], capsys)
    assert code == 2
    assert re.search(match, err), err
    assert os.listdir(tmp_path) == []


def test_plan_gif_of_a_state_run_names_the_obs_kind(capsys, tmp_path, tiny_run):
    code, _, err = run_cli(["plan", "--run-dir", tiny_run[0], "--gif",
                            str(tmp_path / "a.gif")], capsys)
    assert code == 2
    assert "--gif: needs pixel observations" in err and "'reacher' has state" in err
    code, _, err = run_cli(["plan", "--oracle", "--task", "reacher", "--gif",
                            str(tmp_path / "a.gif")], capsys)
    assert code == 2 and "needs pixel observations" in err
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- curves


def check_png(path, min_bytes=10_000):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    assert os.path.getsize(path) > min_bytes
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] >= 200 and pixels.shape[1] >= 400
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines, text: not blank


def test_training_curves_of_a_run(tmp_path, tiny_run, tiny_train_config):
    run_dir, _ = tiny_run
    metrics = visualize.read_metrics(run_dir)
    steps, loss = metrics["loss"]
    logged = tiny_train_config.steps // tiny_train_config.log_every
    np.testing.assert_array_equal(steps, np.arange(1, logged + 1) * tiny_train_config.log_every)
    assert loss.shape == (logged,) and np.all(np.isfinite(loss))
    path = visualize.plot_training_curves(run_dir, str(tmp_path / "curves.png"))
    check_png(path)
    with pytest.raises(ValueError, match="no metrics.jsonl"):
        visualize.read_metrics(str(tmp_path))
    # a run killed mid-write: its truncated last line is skipped
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        text = f.read()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.jsonl").write_text(text + '{"step": 70, "lo')
    assert visualize.read_metrics(str(broken))["loss"][0].shape == (logged,)
    (broken / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="holds no metrics"):
        visualize.plot_training_curves(str(broken))
    assert not (broken / visualize.TRAINING_CURVES).exists()


def test_train_writes_training_curves_and_inspect_plots_them(capsys, tmp_path, tiny_dataset,
                                                             tiny_run):
    run_dir = str(tmp_path / "run")
    code, out, err = run_cli(["train", "--data", tiny_dataset.path, "--run-dir", run_dir,
                              "--steps", "4", "--batch-size", "8", "--window", "4",
                              "--latent", "8", "--hidden", "16", "--checkpoint-every", "2",
                              "--json"], capsys)
    assert code == 0, err
    curves = json.loads(out)["training_curves"]
    assert curves == os.path.join(run_dir, "training_curves.png")
    check_png(curves, min_bytes=5_000)
    # inspect --plot: a run's curves to a new file; refused for a dataset or an existing file
    plot = str(tmp_path / "inspected.png")
    code, out, err = run_cli(["inspect", tiny_run[0], "--plot", plot], capsys)
    assert code == 0, err
    assert f"wrote {plot}" in out
    check_png(plot)
    code, _, err = run_cli(["inspect", tiny_run[0], "--plot", plot], capsys)
    assert code == 2 and "exists" in err
    code, _, err = run_cli(["inspect", tiny_dataset.path, "--plot", str(tmp_path / "d.png")],
                           capsys)
    assert code == 2 and "--plot: plots a training run's curves" in err and "dataset" in err
    assert not (tmp_path / "d.png").exists()
