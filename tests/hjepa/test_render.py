"""hjepa.tasks.render: the top-down renderer against hand-computed pictures.

One small MJCF scene holds every shape the checks need. Geoms fixed to the world and geoms on
moving bodies take different paths through the renderer, so the scene has both:

  index  name    kind                 body                  where (metres)
  0      floor   plane                world (never drawn)
  1      rod     capsule, r 0.1       world                 from (-0.6, 0.5) to (0.2, 0.7)
  2      slab    box 0.3 x 0.3 x 0.1  world                 centre (-0.5, -0.5), top z 0.2
  3      egg     ellipsoid            world                 centre (0.5, 0.6), semi-axes 0.1, 0.3
  4      ball    sphere, r 0.25       slides x, y, z        centre (q0, q1), top z 0.55 + q2
  5      brick   box 0.3 x 0.1        hinge about z (q3)    centre (0.5, -0.4)
  6      puck    cylinder r 0.15      slides z (q4)         centre (0, 0), top z 0.15 + q4

The camera sees [-1, 1]² in 64 pixels: a pixel is 1/32 m, and pixel (i, j) is centred at
x = -1 + (j + 0.5) / 32, y = 1 - (i + 0.5) / 32.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjepa.tasks import render as R
from hjepa.tasks._brax import import_brax

SCENE = """
<mujoco>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <geom name="rod" type="capsule" fromto="-0.6 0.5 0.05 0.2 0.7 0.05" size="0.1"/>
    <geom name="slab" type="box" pos="-0.5 -0.5 0.1" size="0.3 0.3 0.1"/>
    <geom name="egg" type="ellipsoid" pos="0.5 0.6 0.05" size="0.3 0.1 0.05" euler="0 0 90"/>
    <body name="mover" pos="0 0 0.3">
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <joint name="z" type="slide" axis="0 0 1"/>
      <geom name="ball" type="sphere" size="0.25"/>
    </body>
    <body name="spinner" pos="0.5 -0.4 0.15">
      <joint name="turn" type="hinge" axis="0 0 1"/>
      <geom name="brick" type="box" size="0.3 0.1 0.05"/>
    </body>
    <body name="lifter" pos="0 0 0.1">
      <joint name="lift" type="slide" axis="0 0 1"/>
      <geom name="puck" type="cylinder" size="0.15 0.05"/>
    </body>
  </worldbody>
</mujoco>
"""
ROD, SLAB, EGG, BALL, BRICK, PUCK = 1, 2, 3, 4, 5, 6
CAMERA = R.Camera(center=(0.0, 0.0), extent=1.0, size=64)
PIXEL = 1.0 / 32
BG = np.array(R.BACKGROUND, np.uint8)


@functools.cache
def scene():
    import_brax()
    from brax.io import mjcf

    return mjcf.loads(SCENE)


@functools.cache
def _forward():
    from brax.generalized import pipeline

    sys = scene()
    return jax.jit(lambda q: pipeline.init(sys, q, jnp.zeros_like(q)).x)


def transforms(*q: float):
    """Link transforms of the scene at q = (ball x, ball y, ball z, brick angle, puck lift)."""
    q = q + (0.0,) * (5 - len(q))
    return _forward()(jnp.asarray(q, jnp.float32))


TRACES: dict[tuple, int] = {}  # how often each `draw` function was traced


@functools.cache
def draw(hidden: tuple[str, ...] = (), size: int = 64):
    """A jitted renderer of the scene: x -> uint8 [size, size, 3] (compiled once per call)."""
    sys = scene()
    camera = R.Camera(extent=1.0, size=size)
    visible = R.visible_geoms(sys, hidden)

    def fn(x):
        TRACES[hidden, size] = TRACES.get((hidden, size), 0) + 1
        return R.render(sys, x, camera, visible=visible)

    return jax.jit(fn)


def only(*names: str) -> tuple[str, ...]:
    """The `hidden` tuple that leaves only `names` visible."""
    return tuple(n for n in R.geom_names(scene()) if n and n not in names)


def color(geom: int) -> np.ndarray:
    return R.PALETTE[geom % len(R.PALETTE)]


def pixel_of(x: float, y: float) -> tuple[int, int]:
    """The pixel (row, column) that contains the world point (x, y)."""
    row, col = CAMERA.to_pixel([x, y])
    return int(round(row)), int(round(col))


def centres() -> tuple[np.ndarray, np.ndarray]:
    """World x [S, S] and y [S, S] of every pixel centre (independent of the renderer)."""
    k = np.arange(64) + 0.5
    return np.meshgrid(-1.0 + k * PIXEL, 1.0 - k * PIXEL)  # x varies along columns


def coverage(image: np.ndarray, geom: int) -> np.ndarray:
    """Fraction [S, S] of each pixel covered by `geom` (alone on the floor), read back from the
    colour channel where it differs most from the floor."""
    c = color(geom).astype(float)
    ch = int(np.argmax(np.abs(c - BG)))
    return (image[..., ch].astype(float) - BG[ch]) / (c[ch] - BG[ch])


def assert_known(image: np.ndarray, sdf: np.ndarray, geom: int):
    """Pixels whose centre is more than 0.75 pixel inside (sdf < 0) have the geom's colour
    exactly; more than 0.75 pixel outside, the floor's exactly."""
    inside, outside = sdf < -0.75 * PIXEL, sdf > 0.75 * PIXEL
    assert inside.sum() > 20
    np.testing.assert_array_equal(image[inside], np.broadcast_to(color(geom), image[inside].shape))
    np.testing.assert_array_equal(image[outside], np.broadcast_to(BG, image[outside].shape))


def segment_distance(x, y, a, b):
    """Distance [S, S] from points (x, y) to the segment a-b (numpy, by hand)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(x - a[0] - t * d[0], y - a[1] - t * d[1])


# ----------------------------------------------------------------------------- shapes


def test_sphere_is_a_disc_of_the_right_size_and_colour_and_nothing_else():
    image = np.asarray(draw(only("ball"))(transforms(0.3, -0.2)))
    x, y = centres()
    sdf = np.hypot(x - 0.3, y + 0.2) - 0.25
    assert_known(image, sdf, BALL)
    alpha = coverage(image, BALL)
    expected = math.pi * 0.25**2 / PIXEL**2  # 201.06 pixels
    assert abs(alpha.sum() - expected) < 0.01 * expected
    assert abs((alpha >= 0.5).sum() - expected) < 0.03 * expected
    # Partly covered pixels lie within a pixel of the outline, nowhere else.
    partial = (image != BG).any(-1) & (image != color(BALL)).any(-1)
    assert np.all(np.abs(sdf[partial]) < 0.75 * PIXEL)


def test_row_zero_is_the_top_and_column_zero_the_left():
    def centroid(image):
        alpha = coverage(image, BALL)
        rows, cols = np.indices(alpha.shape)
        return np.array([(alpha * rows).sum(), (alpha * cols).sum()]) / alpha.sum()

    up = np.asarray(draw(only("ball"))(transforms(0.0, 0.5)))  # +y: the upper half
    right = np.asarray(draw(only("ball"))(transforms(0.5, 0.0)))  # +x: the right half
    # y = 1 - (i + 0.5) / 32 = 0.5 at row 15.5; x = -1 + (j + 0.5) / 32 = 0.5 at column 47.5.
    np.testing.assert_allclose(centroid(up), [15.5, 31.5], atol=0.02)
    np.testing.assert_allclose(centroid(right), [31.5, 47.5], atol=0.02)
    np.testing.assert_allclose(CAMERA.to_pixel([0.0, 0.5]), [15.5, 31.5])
    xs, ys = CAMERA.pixel_centers()
    assert xs[0] < xs[-1] and ys[0] > ys[-1]
    np.testing.assert_allclose([xs[48], ys[15]], [0.5 + PIXEL / 2, 0.5 + PIXEL / 2])


def test_moving_the_body_moves_the_disc_by_the_expected_pixels():
    at_0 = np.asarray(draw(only("ball"))(transforms(0.0, 0.0)))
    moved = np.asarray(draw(only("ball"))(transforms(0.25, -0.125)))  # 8 right, 4 down
    # The same picture, shifted (up to rounding of the anti-aliased edge).
    diff = np.abs(moved[4:, 8:].astype(int) - at_0[:-4, :-8].astype(int))
    assert diff.max() <= 1
    assert (at_0 != moved).any()


def test_box_rotated_about_z_inside_and_outside_at_hand_computed_points():
    angle = 0.5
    image = np.asarray(draw(only("brick"))(transforms(0.0, 0.0, 0.0, angle)))
    centre = np.array([0.5, -0.4])
    u = np.array([math.cos(angle), math.sin(angle)])  # the box's local x axis
    v = np.array([-math.sin(angle), math.cos(angle)])  # its local y axis

    def at(a, b):
        return image[pixel_of(*(centre + a * u + b * v))]

    for a, b in [(0.0, 0.0), (0.25, 0.05), (-0.25, -0.05), (0.25, -0.05), (-0.25, 0.05)]:
        np.testing.assert_array_equal(at(a, b), color(BRICK), err_msg=f"inside {(a, b)}")
    for a, b in [(0.36, 0.0), (-0.36, 0.0), (0.0, 0.16), (0.0, -0.16), (0.34, 0.14)]:
        np.testing.assert_array_equal(at(a, b), BG, err_msg=f"outside {(a, b)}")
    # Everywhere: the rectangle |a| <= 0.3, |b| <= 0.1 in the box's frame.
    x, y = centres()
    a, b = (x - centre[0]) * u[0] + (y - centre[1]) * u[1], (x - centre[0]) * v[0] + (
        y - centre[1]) * v[1]
    q = np.stack([np.abs(a) - 0.3, np.abs(b) - 0.1])
    sdf = np.linalg.norm(np.maximum(q, 0.0), axis=0) + np.minimum(q.max(0), 0.0)
    assert_known(image, sdf, BRICK)


def test_capsule_is_a_stadium_with_round_ends():
    image = np.asarray(draw(only("rod"))(transforms()))
    a, b = np.array([-0.6, 0.5]), np.array([0.2, 0.7])
    d = (b - a) / np.linalg.norm(b - a)
    n = np.array([-d[1], d[0]])
    mid = (a + b) / 2
    for p in [a, b, mid, b + 0.05 * d, a - 0.05 * d, mid + 0.05 * n, mid - 0.05 * n]:
        np.testing.assert_array_equal(image[pixel_of(*p)], color(ROD), err_msg=f"inside {p}")
    # Beyond the ends and sides, and at the corners of the bounding rectangle (the caps are
    # round: the corner is 0.1 * sqrt(2) from the end point, outside the radius 0.1).
    for p in [b + 0.16 * d, a - 0.16 * d, mid + 0.16 * n, b + 0.11 * (d + n), a - 0.11 * (d + n)]:
        np.testing.assert_array_equal(image[pixel_of(*p)], BG, err_msg=f"outside {p}")
    x, y = centres()
    assert_known(image, segment_distance(x, y, a, b) - 0.1, ROD)


def test_upright_cylinder_is_a_disc_and_ellipsoid_an_ellipse():
    image = np.asarray(draw(only("puck", "egg"))(transforms()))
    x, y = centres()
    assert_known(np.where((x > 0.3)[..., None], BG, image), np.hypot(x, y) - 0.15, PUCK)
    # The egg, turned 90 degrees about z: semi-axes 0.1 along x, 0.3 along y.
    for p in [(0.5, 0.6), (0.5, 0.8), (0.5, 0.4), (0.56, 0.6)]:
        np.testing.assert_array_equal(image[pixel_of(*p)], color(EGG), err_msg=f"inside {p}")
    for p in [(0.5, 0.95), (0.5, 0.25), (0.65, 0.6), (0.35, 0.6), (0.6, 0.88)]:
        np.testing.assert_array_equal(image[pixel_of(*p)], BG, err_msg=f"outside {p}")


def test_higher_geoms_cover_lower_ones():
    render = draw(only("ball", "puck", "slab"))
    centre = pixel_of(0.0, 0.0)
    # The ball (top 0.55) over the puck (top 0.15) ...
    np.testing.assert_array_equal(np.asarray(render(transforms()))[centre], color(BALL))
    # ... until the puck is lifted above it (top 0.15 + 0.5), moving over moving.
    np.testing.assert_array_equal(np.asarray(render(transforms(0, 0, 0, 0, 0.5)))[centre],
                                  color(PUCK))
    # Moving against fixed: the slab (top 0.2) hides the ball sunk to top 0.05 ...
    slab_centre = pixel_of(-0.5, -0.5)
    sunk = np.asarray(render(transforms(-0.5, -0.5, -0.5)))
    np.testing.assert_array_equal(sunk[slab_centre], color(SLAB))
    assert not (sunk == color(BALL)).all(-1).any()  # radius 0.25 < slab half-side 0.3
    # ... and the ball on top of it (top 0.55) hides the slab where they overlap.
    np.testing.assert_array_equal(np.asarray(render(transforms(-0.5, -0.5)))[slab_centre],
                                  color(BALL))


# ----------------------------------------------------------------------------- visibility


def test_hidden_geoms_are_not_drawn():
    x = transforms(0.3, -0.2)
    shown = np.asarray(draw(only("ball", "brick"))(x))
    hidden = np.asarray(draw(only("brick"))(x))  # the ball hidden
    ball = pixel_of(0.3, -0.2)
    np.testing.assert_array_equal(shown[ball], color(BALL))
    np.testing.assert_array_equal(hidden[ball], BG)
    assert not (hidden == color(BALL)).all(-1).any()
    visible = R.visible_geoms(scene(), ("ball", "rod"))
    assert visible.dtype == bool and visible.shape == (7,)
    assert list(np.flatnonzero(~visible)) == [ROD, BALL]
    assert R.geom_names(scene()) == ("floor", "rod", "slab", "egg", "ball", "brick", "puck")


def test_unknown_hidden_name_names_the_known_geoms():
    with pytest.raises(ValueError) as info:
        R.visible_geoms(scene(), ("ball", "nosuchgeom"))
    message = str(info.value)
    assert "nosuchgeom" in message
    for name in ("rod", "ball", "brick", "puck"):
        assert name in message
    with pytest.raises(ValueError, match="tuple"):
        R.visible_geoms(scene(), "ball")


# ----------------------------------------------------------------------------- the function


def test_dtype_shape_jit_vmap_and_no_retrace():
    sys = scene()
    camera = R.Camera(extent=1.0, size=32)
    fn = draw((), 32)
    qs = np.random.default_rng(0).uniform([-0.5, -0.5, -0.3, -3, -0.2], [0.5, 0.5, 0.3, 3, 0.6],
                                          (4, 5))
    singles = [transforms(*map(float, q)) for q in qs]
    xs = jax.tree.map(lambda *leaves: jnp.stack(leaves), *singles)  # pos [4, L, 3], rot [4, L, 4]
    image = fn(singles[0])
    assert image.dtype == jnp.uint8 and image.shape == (32, 32, 3)
    np.testing.assert_array_equal(np.asarray(R.render(sys, singles[0], camera)),
                                  np.asarray(image))  # no jit
    batch = jax.jit(jax.vmap(fn))(xs)
    assert batch.shape == (4, 32, 32, 3) and batch.dtype == jnp.uint8
    for i, x in enumerate(singles):
        np.testing.assert_array_equal(np.asarray(batch[i]), np.asarray(fn(x)))
    assert len({np.asarray(b).tobytes() for b in batch}) == 4  # four different pictures
    assert TRACES[(), 32] == 1  # traced once: new states (and the vmapped batch) reuse it


def test_colors_argument_and_model_colours():
    sys = scene()
    camera = R.Camera(extent=1.0, size=16)
    x = transforms()
    red = np.zeros((7, 3), np.float32)
    red[:, 0] = 1.0
    image = np.asarray(R.render(sys, x, camera, visible=R.visible_geoms(sys, only("ball")),
                                colors=red))
    assert tuple(image[8, 8]) == (255, 0, 0)
    rgba = R.rgba_colors(sys)
    assert rgba.dtype == np.uint8 and rgba.shape == (7, 3)
    assert R.default_colors(sys).shape == (7, 3)
    with pytest.raises(ValueError, match=r"\[7, 3\]"):
        R.render(sys, x, camera, colors=np.zeros((6, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        R.render(sys, x, camera, colors=np.full((7, 3), 255.0))
    with pytest.raises(ValueError, match="visible"):
        R.render(sys, x, camera, visible=np.ones(6, bool))
    with pytest.raises(ValueError, match="vmap"):
        R.render(sys, jax.tree.map(lambda leaf: leaf[None], x), camera)


def test_palette_is_distinct_and_far_from_the_floor():
    p = R.PALETTE.astype(float)
    assert p.shape == (12, 3) and R.PALETTE.dtype == np.uint8
    pairwise = np.linalg.norm(p[:, None] - p[None], axis=-1) + 1e9 * np.eye(12)
    assert pairwise.min() >= 70
    assert np.linalg.norm(p - BG, axis=-1).min() >= 130


@pytest.mark.parametrize(
    "kwargs, what",
    [
        ({"size": 4}, "size"),
        ({"size": 8.5}, "size"),
        ({"size": True}, "size"),
        ({"extent": 0.0}, "extent"),
        ({"extent": -1.0}, "extent"),
        ({"extent": float("nan")}, "extent"),
        ({"center": (0.0,)}, "center"),
        ({"center": (0.0, float("inf"))}, "center"),
    ],
)
def test_camera_validation(kwargs, what):
    with pytest.raises(ValueError, match=what):
        R.Camera(**kwargs)


def test_camera_is_hashable_and_normalised():
    camera = R.Camera(center=[0, 1], extent=2, size=np.int64(16))
    assert camera == R.Camera(center=(0.0, 1.0), extent=2.0, size=16)
    assert hash(camera) == hash(R.Camera(center=(0.0, 1.0), extent=2.0, size=16))
    camera.validate()
    assert camera.pixel_size == 0.25
    with pytest.raises(ValueError, match="camera"):
        R.render(scene(), transforms(), "top")


# ----------------------------------------------------------------------------- reacher


def test_reacher_with_its_target_hidden():
    from brax.generalized import pipeline

    from hjepa.tasks.reacher import load_system

    sys = load_system()
    camera = R.Camera(extent=0.35, size=64)
    hidden = R.visible_geoms(sys, ("target",))
    draw_reacher = jax.jit(lambda q: R.render(sys, pipeline.init(sys, q, jnp.zeros(4)).x,
                                              camera, visible=hidden))
    # Arm angles (shoulder, elbow), then the target's slide joints (x, y).
    one = np.asarray(draw_reacher(jnp.array([0.0, 0.0, 0.1, 0.1])))
    two = np.asarray(draw_reacher(jnp.array([2.0, -1.0, 0.1, 0.1])))
    moved_target = np.asarray(draw_reacher(jnp.array([0.0, 0.0, -0.1, -0.1])))
    assert (one != BG).any(-1).mean() > 0.05  # the arena and the arm
    assert (one != two).any()
    np.testing.assert_array_equal(one, moved_target)  # the target is not drawn
    # The arm points along +x at zero angles: near (0.2, 0) (a corner of four pixels) the first
    # picture shows it, the second only floor.
    row, col = camera.to_pixel([0.2, 0.0]).astype(int)
    near_one, near_two = one[row:row + 2, col:col + 2], two[row:row + 2, col:col + 2]
    assert (near_one != BG).any(-1).all() and (near_two == BG).all()
