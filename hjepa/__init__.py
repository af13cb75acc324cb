"""hjepa: planning with hierarchical JEPA world models on Brax physics tasks.

Submodules: `tasks` (goal-reaching Brax tasks), `data` (reward-free collection and on-disk
datasets), `modules` and `model` (the Flax world model as pure functions), `losses`, `train`,
`cost`, `goal_space` (goals as points of a task's goal space), `checkpoint`, `evaluate`
(closed-loop MPC evaluation), `visualize` (Brax's HTML
viewer of episodes, training curves, GIFs of pixel observations), `demo` and `cli`.
"""

from hjepa import cost, data, evaluate, goal_space, losses, model, tasks, train, visualize
from hjepa.data import CollectConfig, Dataset, ExplorationPolicy
from hjepa.evaluate import EvalResult
from hjepa.losses import LossConfig
from hjepa.model import ModelConfig
from hjepa.train import TrainConfig, TrainingError, TrainState

__version__ = "0.1.0"

__all__ = [
    "CollectConfig",
    "Dataset",
    "EvalResult",
    "ExplorationPolicy",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "TrainState",
    "TrainingError",
    "cost",
    "data",
    "evaluate",
    "goal_space",
    "losses",
    "model",
    "tasks",
    "train",
    "visualize",
]
