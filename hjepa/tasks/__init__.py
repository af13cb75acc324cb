"""Goal-reaching Brax tasks behind `make(name, obs=...)`."""

from hjepa.tasks import (  # noqa: F401  (registers)
    ant_maze,
    point_maze,
    push_t,
    pusher,
    reacher,
    windy,
)
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
