"""A jittable top-down renderer of Brax states: orthographic, looking down the -z axis.

`render(sys, x, camera)` draws the geoms of a Brax system at link transforms `x`
(`pipeline_state.x`) as an RGB image, uint8 [S, S, 3]. It is a pure function of `x`: jit it
with `sys`, the camera and the visibility mask closed over, and vmap it over a batch of states:

    cam = Camera(center=(0.0, 0.0), extent=0.35, size=64)
    visible = visible_geoms(sys, hidden=("target",))
    draw = jax.jit(jax.vmap(lambda x: render(sys, x, cam, visible=visible)))
    images = draw(states.x)  # uint8 [B, 64, 64, 3]

Image convention: row 0 is the top of the view (largest y), column 0 the left (smallest x).
Pixel (i, j) of a camera with centre (cx, cy), half-side `extent` and `size` S has its centre at

    x = cx - extent + (j + 0.5) * 2 * extent / S
    y = cy + extent - (i + 0.5) * 2 * extent / S

so `image[i, j]` reads like a map with +x to the right and +y up (`Camera.pixel_centers`).

Geometry. World poses of geoms are computed as brax/contact.py computes them: the link
transforms are extended by an identity for the world body, then a geom's position is
`x.pos + rotate(geom_pos, x.rot)` and its rotation `x.rot * geom_quat`. Each geom is drawn as
its outline seen from above (its orthographic projection onto the xy plane):

- sphere: a disc (exact).
- capsule: the stadium around the xy projection of its segment (local z axis, half-length
  size[1], radius size[0]) (exact).
- cylinder: the projection of the segment plus the ellipse that its end disc projects to
  (semi-axes radius and radius * |axis_z|): a disc when upright, a rectangle when lying
  flat (exact outline; the distance to it is approximated off the straight sides, see below).
- ellipsoid: the ellipse it projects to (exact outline, approximate distance).
- box: the hexagon it projects to, the Minkowski sum of its three projected half-axes; an
  oriented rectangle with half sizes size[0], size[1] when its z axis is vertical (exact
  outline and exact distance, also when tilted).
- plane: the floor, never drawn (the background is the floor colour `BACKGROUND`).
- mesh, height field, sdf: not supported, never drawn.

Anti-aliasing. Each geom's signed distance d (negative inside) is evaluated at the pixel
centres and turned into coverage alpha = clip(0.5 - d / pixel_size, 0, 1): pixels whose
centre lies more than half a pixel inside a geom take its colour exactly (where nothing higher
covers them), pixels more than half a pixel outside do not see it. Distances are exact for
discs, stadiums and boxes; for ellipses (ellipsoids, cylinder ends) they are the first-order
estimate f / |grad f| of the implicit ellipse, exact on the axes and accurate within a pixel
of the outline unless the ellipse is thinner than a pixel.

Order. Geoms are composed ("over") in order of increasing top height (z of the geom's highest
point, recomputed for every state), so higher geoms cover lower ones. Geoms whose tops are
level (within 1e-5 m per index) stack by geom index, the later on top, so numerical noise in
the heights never flips their order. Geoms fixed to the world (body 0) are composed once, at
trace time, into a single layer whose height at each pixel is the top of the highest fixed geom
that touches the pixel; a moving geom is drawn over all the fixed geoms at a pixel or under all
of them. This is exact except where fixed geoms overlap each other and a moving geom's top lies
between theirs (e.g. an object between a table top and a marker on it).

Colours. By default geom g takes `PALETTE[g % 12]`: twelve saturated, clearly distinct
colours, each far from the dark grey floor, so every geom of a task can be told apart (a
plane's slot goes unused). `rgba_colors(sys)` gives the model's own colours (geom_rgba, or the
material's rgba) instead; pass either, or your own, as `colors`. Transparency is ignored.

Cost. Invisible geoms, planes and meshes cost nothing, and fixed geoms cost one constant layer.
The M moving geoms are sorted by height for every state, but what is sorted is their rows of
shape parameters ([M, P], small), not their images: a gather of images with a per-state index
is slow once vmapped. Each layer is then drawn from its sorted row and composed in a fixed
sequence, O(M) work per pixel. When the moving geoms are of several kinds (round: sphere and
capsule; oval: cylinder and ellipsoid; box), each sorted layer is drawn as every kind present
and the right one picked, so mixing kinds multiplies the drawing cost by the number of kinds.
With a traced system (sys passed through jit as an argument) the fixed geoms are drawn like
moving ones, exactly but at a higher cost.

Accuracy of the distances, measured against the convex hull of densely sampled outlines:
boxes and capsules within 1e-4 pixel; coverage of edge pixels within 0.05 for tilted ellipsoids
and within 0.25 near the ends of tilted cylinders.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# mujoco's mjtGeom.
PLANE, HFIELD, SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH = 0, 1, 2, 3, 4, 5, 6, 7
_DRAWN = (SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX)

BACKGROUND = (40, 40, 40)  # the floor: dark grey (uint8 RGB)

# Twelve saturated colours, pairwise at least 70 apart and at least 130 from the floor (RGB).
PALETTE = np.array(
    [
        (230, 25, 75),  # red
        (60, 180, 75),  # green
        (255, 225, 25),  # yellow
        (0, 130, 200),  # blue
        (245, 130, 48),  # orange
        (145, 30, 180),  # purple
        (70, 240, 240),  # cyan
        (240, 50, 230),  # magenta
        (150, 150, 255),  # lavender blue
        (0, 128, 128),  # teal
        (255, 255, 255),  # white
        (170, 110, 40),  # brown
    ],
    np.uint8,
)

_TIE_BREAK = 1e-5  # metres of height per geom index: level geoms stack by index
_BIG = 1e30


@dataclasses.dataclass(frozen=True)
class Camera:
    """Top-down orthographic view of [cx - extent, cx + extent] x [cy - extent, cy + extent].

    Attributes:
      center: (cx, cy), the centre of the view (metres).
      extent: half the side of the square view (metres).
      size: pixels per side S; images are [S, S, 3].

    Hashable, so a camera can be a static argument of `jax.jit`. Invalid values raise
    ValueError on construction (and from `validate()`).
    """

    center: tuple[float, float] = (0.0, 0.0)
    extent: float = 1.0
    size: int = 64

    def __post_init__(self):
        # Normalise numbers to Python floats and ints (a list centre would be unhashable, a
        # numpy int would hash apart from the same int); anything else is left to validate().
        def real(v):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
                v, (bool, np.bool_))

        center = self.center
        if (isinstance(center, (tuple, list, np.ndarray)) and np.ndim(center) == 1
                and len(center) == 2 and all(real(c) for c in center)):
            object.__setattr__(self, "center", tuple(float(c) for c in center))
        if real(self.extent):
            object.__setattr__(self, "extent", float(self.extent))
        if isinstance(self.size, (int, np.integer)) and real(self.size):
            object.__setattr__(self, "size", int(self.size))
        self.validate()

    def validate(self) -> None:
        """Raises ValueError unless size is an int >= 8, extent a finite float > 0 and center
        two finite floats."""
        if not (isinstance(self.center, tuple) and len(self.center) == 2
                and all(isinstance(c, float) and math.isfinite(c) for c in self.center)):
            raise ValueError(f"Camera.center: expected two finite numbers (cx, cy), "
                             f"got {self.center!r}")
        if not (isinstance(self.extent, float) and math.isfinite(self.extent)
                and self.extent > 0):
            raise ValueError(f"Camera.extent: expected a finite number > 0 (half the side of "
                             f"the view, metres), got {self.extent!r}")
        if not (isinstance(self.size, int) and not isinstance(self.size, bool)
                and self.size >= 8):
            raise ValueError(f"Camera.size: expected an int >= 8 (pixels per side), "
                             f"got {self.size!r}")

    @property
    def pixel_size(self) -> float:
        """The side of one pixel (metres): 2 * extent / size."""
        return 2.0 * self.extent / self.size

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """(x of each column [S], y of each row [S]): pixel (i, j) is centred at (x[j], y[i])."""
        k = np.arange(self.size) + 0.5
        x = self.center[0] - self.extent + k * self.pixel_size
        y = self.center[1] + self.extent - k * self.pixel_size
        return x, y

    def to_pixel(self, xy) -> np.ndarray:
        """Continuous (row, column) [..., 2] of world points xy [..., 2]; pixel (i, j) covers
        [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5] around its centre (i, j)."""
        xy = np.asarray(xy, np.float64)
        col = (xy[..., 0] - (self.center[0] - self.extent)) / self.pixel_size - 0.5
        row = (self.center[1] + self.extent - xy[..., 1]) / self.pixel_size - 0.5
        return np.stack([row, col], axis=-1)


# ----------------------------------------------------------------------------- geoms


def geom_names(sys) -> tuple[str, ...]:
    """Names of the system's geoms in order ('' for an unnamed geom)."""
    names = bytes(sys.names)
    out = []
    for adr in np.asarray(sys.name_geomadr):
        end = names.find(b"\x00", int(adr))
        out.append(names[int(adr):end if end >= 0 else None].decode())
    return tuple(out)


def visible_geoms(sys, hidden: tuple[str, ...] = ()) -> np.ndarray:
    """bool [num_geoms]: True for every geom except the named ones.

    Planes (the floor), meshes and height fields are never drawn whatever this mask says.

    Raises:
      ValueError: for a hidden name that is not a geom of `sys` (the message lists the
        known names), or a bare string instead of a tuple of names.
    """
    if isinstance(hidden, str):
        raise ValueError(f"hidden: expected a tuple of geom names, got the string {hidden!r} "
                         f"(write ({hidden!r},))")
    names = geom_names(sys)
    unknown = [h for h in hidden if not isinstance(h, str) or not h or h not in names]
    if unknown:
        known = [n for n in names if n]
        raise ValueError(f"hidden: expected names of geoms of the system, one of {known}; "
                         f"got unknown {unknown}")
    return np.array([n not in hidden for n in names], bool)


def default_colors(sys) -> np.ndarray:
    """The default colours, uint8 [num_geoms, 3]: geom g takes PALETTE[g % len(PALETTE)]."""
    return PALETTE[np.arange(sys.ngeom) % len(PALETTE)]


def rgba_colors(sys) -> np.ndarray:
    """The model's own colours, uint8 [num_geoms, 3]: the geom's material rgba where it has a
    material, else its geom_rgba (alpha dropped)."""
    rgba = np.asarray(sys.geom_rgba, np.float64)[:, :3]
    matid = np.asarray(sys.geom_matid)
    mat_rgba = np.asarray(sys.mat_rgba, np.float64)
    if mat_rgba.size:
        has = matid >= 0
        rgba = np.where(has[:, None], mat_rgba[np.where(has, matid, 0), :3], rgba)
    return np.round(255.0 * np.clip(rgba, 0.0, 1.0)).astype(np.uint8)


def geom_poses(sys, x, geoms=None) -> tuple[jax.Array, jax.Array]:
    """World poses of geoms at link transforms `x`, as brax/contact.py computes them.

    Args:
      sys: a brax System.
      x: brax Transform, pos [L, 3], rot [L, 4] (quaternions w, x, y, z).
      geoms: indices of the geoms wanted (numpy ints [G]); default all.

    Returns:
      (pos [G, 3], rot [G, 3, 3]): each geom's centre and rotation matrix (columns: its local
      axes in the world frame).
    """
    ids = np.arange(sys.ngeom) if geoms is None else np.asarray(geoms, np.int64)
    links = np.asarray(sys.geom_bodyid)[ids] - 1
    return _poses(x, links, sys.geom_pos[ids], sys.geom_quat[ids])


def _poses(x, links: np.ndarray, geom_pos, geom_quat):
    """Geom poses (pos [G, 3], rot [G, 3, 3]) from link transforms x, the geoms' links [G]
    (-1: the world) and their local poses geom_pos [G, 3], geom_quat [G, 4]."""
    from brax import math as bmath
    from brax.base import Transform

    x = x.concatenate(Transform.zero((1,)))  # link -1 (the world body) -> identity
    xpos, xquat = x.pos[links], x.rot[links]
    pos = xpos + jax.vmap(bmath.rotate)(geom_pos, xquat)
    rot = jax.vmap(bmath.quat_to_3x3)(jax.vmap(bmath.quat_mul)(xquat, geom_quat))
    return pos, rot


# ----------------------------------------------------------------------------- distances
# Everything below works in view coordinates, in pixels: u = column + 0.5 (right), v = row +
# 0.5 (down), so pixel (i, j) is centred at (j + 0.5, i + 0.5). World vectors map to view
# vectors by (x, y) -> (x, -y) / pixel_size (a reflection: distances are unchanged).
#
# Geoms come in three kinds, each drawn by one distance function from a row of parameters:
# round (sphere, capsule: a segment and a radius), oval (cylinder, ellipsoid: a segment and an
# ellipse) and box (the zonogon of three half-axes).
_ROUND, _OVAL, _BOX = 0, 1, 2
_KIND_OF = {SPHERE: _ROUND, CAPSULE: _ROUND, CYLINDER: _OVAL, ELLIPSOID: _OVAL, BOX: _BOX}


def _kinds(types: np.ndarray) -> np.ndarray:
    """The kind [G] of geoms of mjtGeom types [G] (-1: not drawn)."""
    return np.array([_KIND_OF.get(int(t), -1) for t in types], np.int64)


def _group_order(types: np.ndarray) -> np.ndarray:
    """Indices [G'] of the drawable geoms among `types` [G], grouped by kind."""
    kinds = _kinds(types)
    return np.concatenate([np.flatnonzero(kinds == k) for k in (_ROUND, _OVAL, _BOX)])


def _to_view_point(xy, camera: Camera):
    """World points xy [..., 2] -> view points [..., 2] (pixels)."""
    u = (xy[..., 0] - (camera.center[0] - camera.extent)) / camera.pixel_size
    v = (camera.center[1] + camera.extent - xy[..., 1]) / camera.pixel_size
    return jnp.stack([u, v], axis=-1)


def _to_view_vector(xy, camera: Camera):
    """World vectors xy [..., 2] -> view vectors [..., 2] (pixels)."""
    return jnp.stack([xy[..., 0], -xy[..., 1]], axis=-1) / camera.pixel_size


def _params(kind: int, types: np.ndarray, size, pos, rot, camera: Camera):
    """Parameters [G, P] (view pixels) of G geoms drawn as `kind`, and their tops z [G].

    Args:
      kind: _ROUND, _OVAL or _BOX.
      types: mjtGeom types [G] (numpy): sphere or capsule, cylinder or ellipsoid.
      size: geom sizes [G, 3]; pos: centres [G, 3]; rot: rotations [G, 3, 3].
    """
    pix = camera.pixel_size
    center = _to_view_point(pos[:, :2], camera)  # [G, 2]
    z = pos[:, 2]
    if kind == _ROUND:  # a segment ± half_len * (local z), swept by a disc
        radius = size[:, 0]
        half_len = jnp.where(types == CAPSULE, size[:, 1], 0.0)
        axis = rot[:, :, 2]
        half = _to_view_vector(half_len[:, None] * axis[:, :2], camera)
        params = jnp.concatenate([center, half, (radius / pix)[:, None]], axis=1)
        return params, z + radius + half_len * jnp.abs(axis[:, 2])
    if kind == _OVAL:
        cyl = (types == CYLINDER)[:, None]
        # Cylinder: a segment ± half_len * axis swept by its end disc, an ellipse with semi-axes
        # radius * |axis_z| along the projected axis and radius across it.
        axis = rot[:, :, 2]
        axis_xy = axis[:, :2]
        axis_len = jnp.linalg.norm(axis_xy, axis=-1, keepdims=True)
        cyl_dir = jnp.where(axis_len > 1e-6, axis_xy / jnp.maximum(axis_len, 1e-6),
                            jnp.array([1.0, 0.0]))
        cyl_a, cyl_b = size[:, 0] * jnp.abs(axis[:, 2]), size[:, 0]
        cyl_top = size[:, 1] * jnp.abs(axis[:, 2]) + size[:, 0] * jnp.sqrt(
            jnp.maximum(1.0 - axis[:, 2] ** 2, 0.0))
        # Ellipsoid: its projection is the ellipse of the xy block of R diag(size²) Rᵀ.
        # (Products written out, not einsum: a matmul may run at reduced precision on GPU.)
        scaled = rot * (size**2)[:, None, :]
        cov = jnp.sum(scaled[:, :, None, :] * rot[:, None, :, :], axis=-1)  # [G, 3, 3]
        p, q, w = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
        mean, dev = 0.5 * (p + w), jnp.sqrt((0.5 * (p - w)) ** 2 + q**2)
        angle = 0.5 * jnp.arctan2(2.0 * q, p - w)
        ell_dir = jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
        ell_a = jnp.sqrt(jnp.maximum(mean + dev, 0.0))
        ell_b = jnp.sqrt(jnp.maximum(mean - dev, 0.0))
        ell_top = jnp.sqrt(jnp.maximum(cov[:, 2, 2], 0.0))

        half = _to_view_vector(jnp.where(cyl, size[:, 1, None] * axis_xy, 0.0), camera)
        direction = _to_view_vector(jnp.where(cyl, cyl_dir, ell_dir), camera) * pix  # unit
        a = jnp.where(cyl[:, 0], cyl_a, ell_a) / pix
        b = jnp.where(cyl[:, 0], cyl_b, ell_b) / pix
        scale = jnp.maximum(a, b)  # keep both semi-axes > 0 (a flat cylinder is a rectangle)
        a, b = jnp.maximum(a, 1e-4 * scale + 1e-6), jnp.maximum(b, 1e-4 * scale + 1e-6)
        params = jnp.concatenate([center, half, direction, a[:, None], b[:, None]], axis=1)
        return params, z + jnp.where(cyl[:, 0], cyl_top, ell_top)
    # Box: the zonogon centre + sum_k t_k gen_k, t in [-1, 1]^3, of its projected half-axes.
    gen = _to_view_vector(jnp.swapaxes(rot[:, :2, :], 1, 2) * size[:, :, None], camera)
    length = jnp.linalg.norm(gen, axis=-1)  # [G, 3]
    longest = jnp.max(length, axis=-1, keepdims=True)
    valid = length > 1e-6 * longest + 1e-12  # an upright box's z axis projects to a point
    unit = gen / jnp.maximum(length, 1e-12)[..., None]  # u_k [G, 3, 2]
    normal = jnp.stack([-unit[..., 1], unit[..., 0]], axis=-1)  # n_k
    dots = jnp.sum(normal[:, :, None, :] * gen[:, None, :, :], axis=-1)  # n_k . gen_j
    along = jnp.abs(jnp.sum(unit[:, :, None, :] * gen[:, None, :, :], axis=-1))  # |u_k . gen_j|
    parallel = jnp.abs(dots) <= 1e-5 * longest[..., None] + 1e-12
    support = jnp.sum(jnp.abs(dots), axis=-1)  # h_k [G, 3]
    sign = jnp.where(parallel, 0.0, jnp.sign(dots))
    face = jnp.sum(sign[..., None] * gen[:, None, :, :], axis=2)  # c_k [G, 3, 2]
    half_len = jnp.sum(jnp.where(parallel, along, 0.0), axis=-1)  # L_k [G, 3]
    per_edge = jnp.concatenate([normal, unit, face, support[..., None], half_len[..., None],
                                valid[..., None].astype(jnp.float32)], axis=-1)  # [G, 3, 9]
    params = jnp.concatenate([center, per_edge.reshape(-1, 27)], axis=1)
    return params, z + jnp.sum(size * jnp.abs(rot[:, 2, :]), axis=-1)


def _offsets(center, size: int):
    """Pixel centres relative to each row's centre [K, 2]: du [K, 1, S], dv [K, S, 1]."""
    k = jnp.arange(size, dtype=jnp.float32) + 0.5
    return k[None, None, :] - center[:, 0, None, None], k[None, :, None] - center[:, 1, None, None]


def _col(params, i: int):
    """Column i of params [K, P] shaped [K, 1, 1] to broadcast over pixels."""
    return params[:, i, None, None]


def _off_segment(du, dv, hu, hv):
    """Offset (u, v) [K, S, S] of each pixel from the nearest point of the segment
    centre ± (hu, hv) (du, dv: offsets from the centre)."""
    hh = hu * hu + hv * hv
    inv = jnp.where(hh > 1e-12, 1.0 / jnp.maximum(hh, 1e-12), 0.0)
    t = jnp.clip((du * hu + dv * hv) * inv, -1.0, 1.0)
    return du - t * hu, dv - t * hv


def _round_sdf(params, size: int):
    """Stadiums (a disc when the segment is a point): exact sdf [K, S, S] (pixels)."""
    du, dv = _offsets(params[:, :2], size)
    qu, qv = _off_segment(du, dv, _col(params, 2), _col(params, 3))
    return jnp.sqrt(qu * qu + qv * qv) - _col(params, 4)


def _oval_sdf(params, size: int):
    """A segment swept by an ellipse with semi-axis a along the unit vector e and b across it:
    sdf [K, S, S] (pixels), the estimate f / |grad f| of the implicit ellipse."""
    du, dv = _offsets(params[:, :2], size)
    qu, qv = _off_segment(du, dv, _col(params, 2), _col(params, 3))
    eu, ev, a, b = (_col(params, i) for i in (4, 5, 6, 7))
    q1 = qu * eu + qv * ev
    q2 = qv * eu - qu * ev
    k0 = jnp.sqrt((q1 / a) ** 2 + (q2 / b) ** 2)
    k1 = jnp.sqrt((q1 / (a * a)) ** 2 + (q2 / (b * b)) ** 2)
    ratio = jnp.where(k1 > 0, k0 / jnp.where(k1 > 0, k1, 1.0), jnp.minimum(a, b))
    return (k0 - 1.0) * ratio


def _box_sdf(params, size: int):
    """Zonogons (projected boxes): exact sdf [K, S, S] (pixels).

    Inside, the distance is the largest of the three slab distances |n_k . p| - h_k (n_k the
    normal of half-axis k, h_k the zonogon's support along it). Outside, it is the distance to
    the nearest of the three edges that face the pixel: on the pixel's side s of slab k, the
    edge is the segment s * c_k ± L_k u_k, where c_k is the support point (the sum of
    sign(n_k . gen_j) gen_j over the half-axes j not parallel to u_k) and L_k the summed length
    of the parallel ones.
    """
    du, dv = _offsets(params[:, :2], size)
    inside, outside = -_BIG, _BIG
    for k in range(3):
        nu, nv, uu, uv, fu, fv, support, lim, valid = (_col(params, 2 + 9 * k + i)
                                                       for i in range(9))
        proj = du * nu + dv * nv
        side = jnp.where(proj >= 0, 1.0, -1.0)
        wu, wv = du - side * fu, dv - side * fv
        t = jnp.clip(wu * uu + wv * uv, -lim, lim)
        eu, ev = wu - t * uu, wv - t * uv
        ok = valid > 0
        inside = jnp.maximum(inside, jnp.where(ok, jnp.abs(proj) - support, -_BIG))
        outside = jnp.minimum(outside, jnp.where(ok, jnp.sqrt(eu * eu + ev * ev), _BIG))
    return jnp.where(inside > 0, outside, inside)


_SDF = {_ROUND: _round_sdf, _OVAL: _oval_sdf, _BOX: _box_sdf}


def _alpha(sdf):
    """Coverage of pixels by a shape at signed distance sdf (pixels)."""
    return jnp.clip(0.5 - sdf, 0.0, 1.0)


def _static_layers(sys, ids: np.ndarray, camera: Camera):
    """(alpha [G', S, S], top [G'], ids [G']) of the geoms `ids` fixed to the world, as numpy
    constants, or None when the system is traced (then they are drawn with the moving geoms)."""
    leaves = (sys.geom_pos, sys.geom_quat, sys.geom_size)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return None
    types = np.asarray(sys.geom_type)[ids]
    pos, quat, size = (np.asarray(leaf)[ids] for leaf in leaves)
    with jax.ensure_compile_time_eval():  # also when called inside a jit trace
        alpha, top = _fixed_layers(pos, quat, size, types=tuple(types.tolist()), camera=camera)
    return np.asarray(alpha), np.asarray(top), ids[_group_order(types)]


@functools.partial(jax.jit, static_argnames=("types", "camera"))
def _fixed_layers(pos, quat, size, *, types: tuple[int, ...], camera: Camera):
    """Coverage [G', S, S] and tops [G'] of geoms on the world body (their pose is their own),
    in `_group_order`; compiled as one computation rather than run op by op."""
    from brax import math as bmath

    types = np.asarray(types)
    rot = jax.vmap(bmath.quat_to_3x3)(quat)
    kinds = _kinds(types)
    alphas, tops = [], []
    for kind in (_ROUND, _OVAL, _BOX):
        rows = np.flatnonzero(kinds == kind)
        if rows.size:
            params, top = _params(kind, types[rows], size[rows], pos[rows], rot[rows], camera)
            alphas.append(_alpha(_SDF[kind](params, camera.size)))
            tops.append(top)
    return jnp.concatenate(alphas), jnp.concatenate(tops)


class _Flat(NamedTuple):
    """Layers composed in their order into one: premultiplied colour, coverage, top key."""

    color: np.ndarray  # [S, S, 3] premultiplied RGB (0..255)
    cover: np.ndarray  # [S, S] coverage
    key: np.ndarray  # [S, S] the highest key among the layers that touch the pixel


def _flatten(alpha: np.ndarray, key: np.ndarray, rgb: np.ndarray) -> _Flat:
    """Composes constant layers alpha [N, S, S] (keys [N], colours [N, 3]) into one (numpy)."""
    size = alpha.shape[1]
    color = np.zeros((size, size, 3), np.float32)
    cover = np.zeros((size, size), np.float32)
    top = np.full((size, size), -_BIG, np.float32)
    for g in np.argsort(key, kind="stable"):  # bottom to top
        a = alpha[g]
        color = color + a[..., None] * (rgb[g] - color)
        cover = cover + a * (1.0 - cover)
        top = np.where(a > 0, np.maximum(top, key[g]), top)
    return _Flat(color, cover, top)


def _moving_layers(types: np.ndarray, ids: np.ndarray, rgb: np.ndarray, size, pos, rot,
                   camera: Camera):
    """Coverage [M, S, S], keys [M] and colours [M, 3] of moving geoms, bottom to top.

    The order changes from state to state. Rather than sort the images (a gather with a
    per-state index is slow once vmapped), sort the geoms' parameter rows ([M, P], small)
    and draw the layers in that order: then the composition is a fixed sequence of "over"s.
    """
    kinds = _kinds(types)
    present = [k for k in (_ROUND, _OVAL, _BOX) if (kinds == k).any()]
    params, top = {}, jnp.zeros(len(types))
    for kind in present:  # each present kind's parameters for every geom, its own top
        params[kind], kind_top = _params(kind, types, size, pos, rot, camera)
        top = jnp.where(kinds == kind, kind_top, top)
    key = top + _TIE_BREAK * ids.astype(np.float32)  # level geoms stack by index
    order = jnp.argsort(key, stable=True)
    alpha = None
    for kind in present:  # mixed kinds: every sorted layer is drawn as each, and picked
        layer = _alpha(_SDF[kind](params[kind][order], camera.size))
        alpha = layer if alpha is None else jnp.where(
            (jnp.asarray(kinds)[order] == kind)[:, None, None], layer, alpha)
    return alpha, key[order], jnp.asarray(rgb)[order]


def _compose(alpha, key, rgb, flat: _Flat | None, background) -> jax.Array:
    """Layers alpha [M, S, S] with increasing keys [M] and colours [M, 3], and the flattened
    fixed layers `flat` (if any), over the background [3]: float RGB [S, S, 3].

    At each pixel the flattened layer goes in above the moving layers whose keys are below its
    own key there: after the first `rank` of them. It is inserted arithmetically (weight 1 at
    its slot, 0 elsewhere) rather than with a select on the image, which XLA fuses better.
    """
    image = jnp.broadcast_to(jnp.asarray(background, jnp.float32),
                             (alpha.shape[1], alpha.shape[2], 3))
    m = alpha.shape[0]
    if flat is not None:
        rank = sum(jnp.where(key[k] <= flat.key, 1, 0) for k in range(m))  # [S, S]
        color, cover = jnp.asarray(flat.color), jnp.asarray(flat.cover)[..., None]
    for k in range(m + 1):
        if flat is not None:  # image over which flat: color + (1 - cover) * image
            here = jnp.where(rank == k, 1.0, 0.0)[..., None]
            image = image + here * (color - cover * image)
        if k < m:
            image = image + alpha[k][..., None] * (rgb[k] - image)
    return image


# ----------------------------------------------------------------------------- render


def _check_mask(visible, sys) -> np.ndarray:
    if visible is None:
        return np.ones(sys.ngeom, bool)
    if isinstance(visible, jax.core.Tracer):
        raise ValueError("visible: expected a concrete numpy bool array [num_geoms] (it "
                         "decides what is compiled), got a traced value")
    mask = np.asarray(visible)
    if mask.dtype != np.bool_ or mask.shape != (sys.ngeom,):
        raise ValueError(f"visible: expected bool [{sys.ngeom}] (one per geom, see "
                         f"visible_geoms), got {mask.dtype} {list(mask.shape)}")
    return mask


def _check_colors(colors, sys) -> np.ndarray:
    """Colours as float32 [num_geoms, 3] in 0..255."""
    if colors is None:
        return default_colors(sys).astype(np.float32)
    if isinstance(colors, jax.core.Tracer):
        raise ValueError("colors: expected a concrete array [num_geoms, 3], got a traced value")
    c = np.asarray(colors)
    if c.shape != (sys.ngeom, 3):
        raise ValueError(f"colors: expected shape [{sys.ngeom}, 3] (RGB per geom), "
                         f"got {list(c.shape)}")
    if c.dtype == np.uint8:
        return c.astype(np.float32)
    if np.issubdtype(c.dtype, np.integer):
        if c.min() < 0 or c.max() > 255:
            raise ValueError(f"colors: integer colours must lie in 0..255, got values in "
                             f"[{c.min()}, {c.max()}]")
        return c.astype(np.float32)
    if np.issubdtype(c.dtype, np.floating):
        if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
            raise ValueError(f"colors: float colours must be finite and lie in [0, 1] (pass "
                             f"uint8 for 0..255), got values in [{c.min()}, {c.max()}]")
        return (255.0 * c).astype(np.float32)
    raise ValueError(f"colors: expected uint8 (0..255) or float (0..1) RGB, got {c.dtype}")


def _check_transform(x, sys) -> None:
    pos, rot = getattr(x, "pos", None), getattr(x, "rot", None)
    links = sys.num_links()
    if pos is None or rot is None:
        raise ValueError(f"x: expected a brax Transform (pipeline_state.x) with pos "
                         f"[{links}, 3] and rot [{links}, 4], got {type(x).__name__}")
    if tuple(pos.shape) != (links, 3) or tuple(rot.shape) != (links, 4):
        raise ValueError(f"x: expected pos [{links}, 3] and rot [{links}, 4] (one state; "
                         f"vmap over a batch), got pos {list(pos.shape)}, rot "
                         f"{list(rot.shape)}")


def render(sys, x, camera: Camera, *, visible=None, colors=None) -> jax.Array:
    """Renders link transforms `x` of `sys` from above: uint8 [S, S, 3].

    Pure in `x` (jit it with sys, camera, visible and colors closed over; vmap it over states).
    See the module docstring for the image convention, the shapes drawn and the order.

    Args:
      sys: a brax System (its geoms are drawn; planes are the floor, meshes are skipped).
      x: brax Transform of one state (`pipeline_state.x`), pos [L, 3], rot [L, 4].
      camera: the view.
      visible: optional numpy bool [num_geoms], the geoms to draw (`visible_geoms`); static.
      colors: optional RGB per geom [num_geoms, 3], uint8 (0..255) or float (0..1); static.
        Default: `default_colors(sys)` (PALETTE by geom index).

    Returns:
      uint8 [S, S, 3]; row 0 is the top (largest y), column 0 the left (smallest x).

    Raises:
      ValueError: for an invalid camera, a mask or colours of the wrong shape or type, or a
        transform that is not [L, 3] / [L, 4].

    Example:
      >>> image = render(sys, state.x, Camera(extent=0.35, size=64))
    """
    if not isinstance(camera, Camera):
        raise ValueError(f"camera: expected a hjepa.tasks.render.Camera, "
                         f"got {type(camera).__name__}")
    camera.validate()
    mask = _check_mask(visible, sys)
    palette = _check_colors(colors, sys)
    _check_transform(x, sys)

    types = np.asarray(sys.geom_type)
    drawn = mask & np.isin(types, _DRAWN)
    fixed = np.asarray(sys.geom_bodyid) == 0
    static_ids = np.flatnonzero(drawn & fixed)
    moving_ids = np.flatnonzero(drawn & ~fixed)
    background = np.asarray(BACKGROUND, np.float32)

    flat = None
    if static_ids.size:
        static = _static_layers(sys, static_ids, camera)
        if static is None:  # a traced system: its fixed geoms are drawn like moving ones
            moving_ids = np.flatnonzero(drawn)
        else:
            alpha, top, ids = static
            key = (top + _TIE_BREAK * ids).astype(np.float32)
            flat = _flatten(alpha, key, palette[ids])
            if not flat.cover.any():  # all out of view
                flat = None
    if not moving_ids.size:
        image = np.broadcast_to(background, (camera.size, camera.size, 3))
        if flat is not None:
            image = flat.color + (1.0 - flat.cover[..., None]) * background
        return jnp.asarray(np.clip(np.round(image), 0, 255).astype(np.uint8))

    leaves = [sys.geom_pos, sys.geom_quat, sys.geom_size]
    if not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        leaves = [np.asarray(leaf) for leaf in leaves]  # index on the host, not op by op
    plan = _Plan(
        links=tuple((np.asarray(sys.geom_bodyid)[moving_ids] - 1).tolist()),
        types=tuple(np.asarray(sys.geom_type)[moving_ids].tolist()),
        ids=tuple(moving_ids.tolist()),
        colors=tuple(map(tuple, palette[moving_ids].tolist())),
        camera=camera,
    )
    return _draw(x, *(leaf[moving_ids] for leaf in leaves), flat, plan=plan)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What `_draw` compiles for (hashable: a static argument)."""

    links: tuple[int, ...]  # [M] the link of each moving geom (-1: the world)
    types: tuple[int, ...]  # [M] their mjtGeom types (all drawable)
    ids: tuple[int, ...]  # [M] their geom indices
    colors: tuple[tuple[float, float, float], ...]  # [M] their RGB (0..255)
    camera: Camera


@functools.partial(jax.jit, static_argnames=("plan",))
def _draw(x, geom_pos, geom_quat, geom_size, flat: _Flat | None, *, plan: _Plan) -> jax.Array:
    """The image uint8 [S, S, 3] of the moving geoms (local poses and sizes [M, ...]) at link
    transforms x, over the fixed ones `flat`. Compiled as one computation, so that `render`
    called outside jit runs it as one call rather than op by op."""
    pos, rot = _poses(x, np.asarray(plan.links), geom_pos, geom_quat)
    alpha, key, rgb = _moving_layers(np.asarray(plan.types), np.asarray(plan.ids),
                                     np.asarray(plan.colors, np.float32), geom_size, pos, rot,
                                     plan.camera)
    image = _compose(alpha, key, rgb, flat, np.asarray(BACKGROUND, np.float32))
    return jnp.clip(jnp.round(image), 0, 255).astype(jnp.uint8)
