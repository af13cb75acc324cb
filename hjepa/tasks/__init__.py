"""Goal-reaching Brax tasks behind `make(name, obs=...)`."""

from hjepa.tasks import reacher  # noqa: F401  (registers the task)
from hjepa.tasks.base import OBS_KINDS, Episode, Goal, Task, make, names, register

__all__ = ["OBS_KINDS", "Episode", "Goal", "Task", "make", "names", "register"]
