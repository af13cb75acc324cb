"""Goal-reaching Brax tasks behind `make(name, obs=...)`."""

from hjepa.tasks import ant_maze, point_maze, pusher, reacher, windy  # noqa: F401  (registers)
from hjepa.tasks.base import (
    DEFAULT_IMAGE_SIZE,
    OBS_KINDS,
    Episode,
    Goal,
    Task,
    make,
    names,
    register,
)

__all__ = ["DEFAULT_IMAGE_SIZE", "OBS_KINDS", "Episode", "Goal", "Task", "make", "names",
           "register"]
