"""Every frozen config of hjepa: what a model is, how it trains, how it plans.

Configs are frozen dataclasses: hashable (static arguments of jitted functions), printable,
and saved beside checkpoints as JSON (`to_dict` / `from_dict`). This module imports nothing
else from hjepa, so every layer can import it. The functions that use a config live with
their layer: `hjepa.model` (ModelConfig), `hjepa.hierarchy` (HierarchyConfig),
`hjepa.latent_variable`, `hjepa.critic`, `hjepa.losses` (LossConfig), `hjepa.train`
(TrainConfig) and the planners (PlannerConfig).
"""

from __future__ import annotations

import dataclasses
import math

from hjepa.checks import (
    check_nonnegative_number,
    check_positive_int,
    check_positive_number,
    is_int,
)

ENCODERS = ("mlp", "conv", "vit")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights of the JEPA loss terms. Hashable; saved beside checkpoints.

    Attributes:
      prediction_weight: multi-step latent prediction error.
      variance_weight: VICReg variance hinge (keeps each latent dimension's std >= 1).
      covariance_weight: VICReg covariance (decorrelates latent dimensions).
      variance_target: the std the variance hinge asks for.
      stop_target_gradient: whether the prediction targets (the encoded future observations)
        are constants of the prediction term. True: the encoder learns only through the
        prediction's input and the regularisers. False (as in VICReg): the prediction error
        also moves the targets toward what can be predicted, which pixel encoders need to
        drop unpredictable detail; the variance and covariance terms keep it from collapsing.
      inverse_dynamics_weight: weight of the inverse-dynamics error, the squared error of the
        actions inferred from consecutive latents (needs a model with an inverse-dynamics
        head, `ModelConfig.inverse_dynamics_hidden`; 0: no such term).
    """

    prediction_weight: float = 1.0
    variance_weight: float = 1.0
    covariance_weight: float = 0.04
    variance_target: float = 1.0
    stop_target_gradient: bool = True
    inverse_dynamics_weight: float = 0.0

    def validate(self) -> None:
        """Raises ValueError unless every weight is a finite number >= 0 and the variance
        target a finite number > 0."""
        for name in ("prediction_weight", "variance_weight", "covariance_weight",
                     "inverse_dynamics_weight"):
            check_nonnegative_number(name, getattr(self, name))
        check_positive_number("variance_target", self.variance_target)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the world model. Hashable; saved beside checkpoints.

    Attributes:
      obs_shape: shape of one observation: state (O,), pixels (H, W, C).
      action_size: A.
      latent_size: D.
      encoder_hidden: hidden layer sizes of the encoder MLP (for "conv": of its MLP head).
      predictor_hidden: hidden layer sizes of the predictor MLP.
      encoder: "mlp" (state observations), "conv" or "vit" (pixels).
      conv_channels: output channels of the conv encoder's stride-2 layers.
      frames: how many frames the channels of an image observation stack (newest first); the
        conv encoder encodes each alone and returns [pose, pose differences] (`ConvEncoder`).
        C and D must be multiples of it.
      patch_size: the ViT's patch side (must divide H and W).
      inverse_dynamics_hidden: hidden layer sizes of an inverse-dynamics head that infers the
        action from two consecutive latents (empty: no head). Trained with
        `LossConfig.inverse_dynamics_weight`, it makes the encoder keep what the actions
        move, e.g. a small forearm in pixels that a JEPA loss alone may drop.
    """

    obs_shape: tuple[int, ...]
    action_size: int
    latent_size: int = 32
    encoder_hidden: tuple[int, ...] = (256, 256)
    predictor_hidden: tuple[int, ...] = (256, 256)
    encoder: str = "mlp"
    conv_channels: tuple[int, ...] = (32, 64, 64, 64)
    frames: int = 1
    patch_size: int = 8
    inverse_dynamics_hidden: tuple[int, ...] = ()

    @property
    def takes_pixels(self) -> bool:
        """Whether the encoder takes images [H, W, C] (else flat state vectors)."""
        return self.encoder in ("conv", "vit")

    @property
    def normalizer_shape(self) -> tuple[int, ...]:
        """Shape S of the normaliser's mean and std: (O,) for states, (C,) for images."""
        return (self.obs_shape[-1],) if self.takes_pixels else tuple(self.obs_shape)

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder: expected one of {list(ENCODERS)}, got {self.encoder!r}")
        if not self.obs_shape or any(int(s) <= 0 for s in self.obs_shape):
            raise ValueError(f"obs_shape: expected positive sizes, got {self.obs_shape!r}")
        if not self.takes_pixels and len(self.obs_shape) != 1:
            raise ValueError(
                f"obs_shape: the {self.encoder!r} encoder takes flat state observations (O,), "
                f"got {tuple(self.obs_shape)} (images [H, W, C]: use encoder='conv' or 'vit')"
            )
        for name in ("action_size", "latent_size"):
            value = getattr(self, name)
            check_positive_int(name, value)
        if self.takes_pixels:
            self._validate_image_shape()
        elif self.frames != 1:
            raise ValueError(f"frames: state observations are one frame, got frames="
                             f"{self.frames!r} with encoder={self.encoder!r}")
        for name in ("encoder_hidden", "predictor_hidden", "inverse_dynamics_hidden"):
            if any(int(s) <= 0 for s in getattr(self, name)):
                raise ValueError(
                    f"{name}: expected positive layer sizes, got {getattr(self, name)}")

    def _validate_image_shape(self) -> None:
        if len(self.obs_shape) != 3:
            raise ValueError(
                f"obs_shape: the {self.encoder!r} encoder takes images (H, W, C), got "
                f"{tuple(self.obs_shape)} (state observations: use encoder='mlp')"
            )
        height, width, channels = self.obs_shape
        f = self.frames
        if not is_int(f) or f < 1:
            raise ValueError(f"frames: expected a positive integer, got {f!r}")
        if f > 1 and self.encoder != "conv":
            raise ValueError(f"frames: only the conv encoder encodes frames apart, got "
                             f"frames={f} with encoder={self.encoder!r}")
        if channels % f or self.latent_size % f:
            raise ValueError(
                f"frames: the {channels} channels of obs_shape and latent_size "
                f"{self.latent_size} must both be multiples of frames={f}")
        if self.encoder == "conv":
            if not self.conv_channels or any(int(c) <= 0 for c in self.conv_channels):
                raise ValueError(
                    f"conv_channels: expected positive channel counts, got {self.conv_channels}")
            smallest = 2 ** len(self.conv_channels)
            if min(height, width) < smallest:
                raise ValueError(
                    f"obs_shape: the conv encoder with {len(self.conv_channels)} stride-2 layers "
                    f"takes images of at least {smallest}x{smallest}, got {height}x{width}"
                )
        else:
            p = self.patch_size
            if not is_int(p) or p <= 0:
                raise ValueError(f"patch_size: expected a positive integer, got {p!r}")
            if height % p or width % p:
                raise ValueError(
                    f"obs_shape: the ViT encoder with patch_size {p} takes images whose sides "
                    f"are multiples of {p}, got {height}x{width}"
                )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        for name in ("obs_shape", "encoder_hidden", "predictor_hidden", "conv_channels",
                     "inverse_dynamics_hidden"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train. Hashable; saved in the run directory.

    Attributes:
      steps: optimiser steps.
      batch_size: windows per batch.
      window: prediction steps per window (the multi-step rollout length).
      learning_rate: peak Adam learning rate (cosine decay to 10% over `steps`).
      grad_clip: global-norm gradient clipping.
      seed: seeds parameters and the batches (batch t uses fold_in(key, t)).
      checkpoint_every: steps between checkpoints.
      log_every: steps between metric records (steps run in jitted chunks of this size).
      loss: term weights.
    """

    steps: int = 3000
    batch_size: int = 256
    window: int = 8
    learning_rate: float = 1e-3
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 100
    loss: LossConfig = LossConfig()

    def validate(self, episode_length: int | None = None) -> None:
        for name in ("steps", "batch_size", "window", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            check_positive_int(name, value)
        if self.batch_size < 2:
            raise ValueError(f"batch_size: expected at least 2 (VICReg needs a batch), got "
                             f"{self.batch_size}")
        for name in ("learning_rate", "grad_clip"):
            check_positive_number(name, getattr(self, name))
        self.loss.validate()
        if episode_length is not None and self.window > episode_length:
            raise ValueError(
                f"window: expected at most the dataset's episode length {episode_length}, "
                f"got {self.window}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["loss"] = LossConfig(**data["loss"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class LevelConfig:
    """One level above the first.

    Attributes:
      chunk: k, actions of the level below per action of this level.
      macro_size: M, size of this level's macro-action.
      predictor_hidden: hidden layer sizes of this level's predictor.
      chunk_hidden: hidden layer sizes of its chunk encoder.
    """

    chunk: int = 8
    macro_size: int = 4
    predictor_hidden: tuple[int, ...] = (256, 256)
    chunk_hidden: tuple[int, ...] = (128, 128)

@dataclasses.dataclass(frozen=True)
class HierarchyConfig:
    """A hierarchical world model. Hashable; saved beside checkpoints.

    Attributes:
      base: the level-1 (flat) model, whose encoder every level shares.
      levels: the levels above the first, bottom up (level 2 first); `()` is a flat model.
      base_window: level-1 prediction steps per training segment (the train window must be a
        multiple of it and of the top level's span).
      level_weight: weight of each upper level's loss against level 1's.
      macro_variance_target: the std the macro-actions' variance hinge asks for.
      macro_variance_weight, macro_covariance_weight: VICReg terms on the macro-actions.
      stop_encoder_gradient: whether upper levels' losses leave the encoder alone (the
        latents they read and predict are constants to them).
    """

    base: ModelConfig
    levels: tuple[LevelConfig, ...] = (LevelConfig(),)
    base_window: int = 8
    level_weight: float = 1.0
    macro_variance_target: float = 0.5
    macro_variance_weight: float = 1.0
    macro_covariance_weight: float = 0.04
    stop_encoder_gradient: bool = True

    # the ModelConfig interface that `hjepa.train` and `hjepa.evaluate` read
    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.base.obs_shape

    @property
    def action_size(self) -> int:
        return self.base.action_size

    @property
    def latent_size(self) -> int:
        return self.base.latent_size

    @property
    def takes_pixels(self) -> bool:
        return self.base.takes_pixels

    @property
    def normalizer_shape(self) -> tuple[int, ...]:
        return self.base.normalizer_shape

    @property
    def num_levels(self) -> int:
        """L: the flat level plus the levels above it."""
        return 1 + len(self.levels)

    def span(self, level: int) -> int:
        """Primitive steps per action of `level` (1-based): 1, k_2, k_2·k_3, ..."""
        self._check_level(level)
        return math.prod(lc.chunk for lc in self.levels[: level - 1])

    def action_size_at(self, level: int) -> int:
        """Size of one action of `level`: A at level 1, M_l above."""
        self._check_level(level)
        return self.action_size if level == 1 else self.levels[level - 2].macro_size

    def _check_level(self, level: int) -> None:
        if not is_int(level) or not (
                1 <= level <= self.num_levels):
            raise ValueError(f"level: expected an integer in [1, {self.num_levels}], got "
                             f"{level!r}")

    def validate(self) -> None:
        if not isinstance(self.base, ModelConfig):
            raise ValueError(f"base: expected a ModelConfig, got {type(self.base).__name__}")
        self.base.validate()
        if not isinstance(self.levels, tuple) or not all(
                isinstance(lc, LevelConfig) for lc in self.levels):
            raise ValueError(f"levels: expected a tuple of LevelConfig, got {self.levels!r}")
        for index, lc in enumerate(self.levels):
            for name in ("chunk", "macro_size"):
                value = getattr(lc, name)
                if not is_int(value) or value <= 0:
                    raise ValueError(f"levels[{index}].{name} (level {index + 2}): expected a "
                                     f"positive integer, got {value!r}")
            if lc.chunk < 2:
                raise ValueError(f"levels[{index}].chunk (level {index + 2}): expected at "
                                 f"least 2 steps of the level below, got {lc.chunk}")
            for name in ("predictor_hidden", "chunk_hidden"):
                if any(int(s) <= 0 for s in getattr(lc, name)):
                    raise ValueError(f"levels[{index}].{name}: expected positive layer sizes, "
                                     f"got {getattr(lc, name)}")
        if (not is_int(self.base_window)
                or self.base_window <= 0):
            raise ValueError(f"base_window: expected a positive integer, got "
                             f"{self.base_window!r}")

    def check_window(self, window: int) -> None:
        """Raises ValueError unless a train window of `window` steps suits every level."""
        top = self.span(self.num_levels)
        for name, size in (("base_window", self.base_window), ("the top level's span", top)):
            if window % size:
                raise ValueError(f"window: expected a multiple of {name} ({size}), got "
                                 f"{window}")

    def to_dict(self) -> dict:
        return {"kind": "hierarchy", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> HierarchyConfig:
        data = {k: v for k, v in data.items() if k != "kind"}
        levels = tuple(
            LevelConfig(**{**lc, "predictor_hidden": tuple(lc["predictor_hidden"]),
                           "chunk_hidden": tuple(lc["chunk_hidden"])})
            for lc in data.pop("levels"))
        return cls(base=ModelConfig.from_dict(data.pop("base")), levels=levels, **data)

def make_config(base: ModelConfig, *, num_levels: int = 2, chunk: int = 8,
                macro_size: int = 4, **options) -> HierarchyConfig:
    """A hierarchy of `num_levels` ≥ 1 levels, every level above the first alike."""
    if not is_int(num_levels) or num_levels < 1:
        raise ValueError(f"num_levels: expected a positive integer (1 is a flat model), got "
                         f"{num_levels!r}")
    config = HierarchyConfig(base, tuple(LevelConfig(chunk, macro_size)
                                         for _ in range(num_levels - 1)), **options)
    config.validate()
    return config

def model_config_from_dict(data: dict) -> ModelConfig | HierarchyConfig:
    """The model config saved by `to_dict`: a `HierarchyConfig` or a flat `ModelConfig`."""
    if data.get("kind") == "hierarchy":
        return HierarchyConfig.from_dict(data)
    return ModelConfig.from_dict(data)

@dataclasses.dataclass(frozen=True)
class CriticConfig:
    """The critic and how it trains. Hashable.

    Attributes:
      embedding_size: E.
      hidden: hidden layer sizes of φ.
      max_steps: random pairs are pushed apart up to this many steps (beyond: no gradient).
      bound_weight: weight of the hinge on the observed-stretch bounds.
      steps, batch_size, window, learning_rate, seed: training (windows of `window` steps).
    """

    embedding_size: int = 16
    hidden: tuple[int, ...] = (256, 256)
    max_steps: float = 100.0
    bound_weight: float = 1.0
    steps: int = 2000
    batch_size: int = 256
    window: int = 16
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self, latent_size: int | None = None) -> None:
        for name in ("embedding_size", "steps", "batch_size", "window"):
            value = getattr(self, name)
            check_positive_int(name, value)
        for name in ("max_steps", "bound_weight", "learning_rate"):
            check_positive_number(name, getattr(self, name))
        if self.batch_size < 2:
            raise ValueError(f"batch_size: expected at least 2 (random pairs need two), got "
                             f"{self.batch_size}")

def critic_config_from_dict(data: dict) -> CriticConfig:
    """A `CriticConfig` from its JSON form (lists back to tuples)."""
    data = dict(data)
    data["hidden"] = tuple(data["hidden"])
    return CriticConfig(**data)

@dataclasses.dataclass(frozen=True)
class CriticModel:
    """A critic as `hjepa.train` trains it: on windows of latents [B, W+1, latent_size] of a
    frozen world model, through the one training chunk (`hjepa.world_model.Critic`)."""

    critic: CriticConfig
    latent_size: int

    def validate(self) -> None:
        self.critic.validate()
        check_positive_int("latent_size", self.latent_size)


@dataclasses.dataclass(frozen=True)
class GoalSpaceConfig:
    """What a world model learns to plan toward goals in a task's goal space
    (`hjepa.goal_space`), and how it trains on the frozen model's latents. Hashable.

    Attributes:
      hidden: hidden layer sizes of the goal head z -> position and of the critic's two
        embeddings φ(z) and ψ(position).
      embedding_size: E, the critic's embedding size.
      max_steps: the critic's random pairs are pushed apart up to this many steps.
      bound_weight: weight of the hinge on the observed-stretch bounds d(z_t, p_{t+k}) <= k.
      head_weight: weight of the goal head's regression loss (positions normalised).
      stride: the critic's clock: it trains on every `stride`-th state of each episode and
        counts in strides (`max_steps` and `window` are in strides), so goals hundreds of
        environment steps away stay within a few dozen; its steps to go are reported in
        environment steps (× stride).
      steps, batch_size, window, learning_rate, seed: training (windows of `window` steps).
    """

    hidden: tuple[int, ...] = (256, 256)
    embedding_size: int = 16
    max_steps: float = 100.0
    bound_weight: float = 1.0
    head_weight: float = 1.0
    stride: int = 1
    steps: int = 3000
    batch_size: int = 256
    window: int = 16
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self) -> None:
        for name in ("embedding_size", "steps", "batch_size", "window", "stride"):
            check_positive_int(name, getattr(self, name))
        if not self.hidden or any(not is_int(h) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer sizes, got {self.hidden!r}")
        for name in ("max_steps", "bound_weight", "head_weight", "learning_rate"):
            check_positive_number(name, getattr(self, name))
        if self.batch_size < 2:
            raise ValueError(f"batch_size: expected at least 2 (random pairs need two), got "
                             f"{self.batch_size}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: dict) -> GoalSpaceConfig:
        """A `GoalSpaceConfig` from its JSON form (lists back to tuples)."""
        data = dict(data)
        data["hidden"] = tuple(data["hidden"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class GoalSpaceModel:
    """A goal-space model as `hjepa.train` trains it: on windows of [latent, position]
    [B, W+1, latent_size + position_size] of a frozen world model
    (`hjepa.world_model.GoalSpace`)."""

    goal_space: GoalSpaceConfig
    latent_size: int
    position_size: int

    def validate(self) -> None:
        self.goal_space.validate()
        check_positive_int("latent_size", self.latent_size)
        check_positive_int("position_size", self.position_size)


@dataclasses.dataclass(frozen=True)
class SkillsConfig:
    """Learned skills over a frozen world model's latents (`hjepa.skills`): a chunk encoder,
    a skill decoder and a level-2 predictor, and how they train. Hashable.

    Attributes:
      chunk: K, the primitive steps a skill is held for (and the level-2 predictor's span).
      macro_size: M, the size of a skill (a macro-action).
      hidden: hidden layer sizes of the encoder, decoder and predictor.
      kl_weight: β, the weight of KL(q(m | z, chunk) ‖ N(0, I)) in the loss.
      decoder_layer_norm: LayerNorm in the decoder's hidden layers (on the ant, its skills
        walked further with it; without, the decoder's action can scale with the latent).
      steps, batch_size, learning_rate, seed: training (batches of chunks).
    """

    chunk: int = 8
    macro_size: int = 4
    hidden: tuple[int, ...] = (256, 256)
    kl_weight: float = 0.01
    decoder_layer_norm: bool = True
    steps: int = 4000
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self) -> None:
        for name in ("chunk", "macro_size", "steps", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if not self.hidden or any(not is_int(h) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer sizes, got {self.hidden!r}")
        check_positive_number("learning_rate", self.learning_rate)
        check_nonnegative_number("kl_weight", self.kl_weight)
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: dict) -> SkillsConfig:
        """A `SkillsConfig` from its JSON form (lists back to tuples)."""
        data = dict(data)
        data["hidden"] = tuple(data["hidden"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class SkillsModel:
    """Skills as `hjepa.train` trains them: on windows of [latent, action] rows
    [B, K+1, latent_size + A] of a frozen world model (the last row's action is unused),
    for actions inside [action_low, action_high] (tuples, so it is hashable)."""

    skills: SkillsConfig
    latent_size: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def validate(self) -> None:
        self.skills.validate()
        check_positive_int("latent_size", self.latent_size)
        if len(self.action_low) != len(self.action_high) or not self.action_low:
            raise ValueError(f"action_low, action_high: expected bounds of one size, got "
                             f"{self.action_low} and {self.action_high}")


@dataclasses.dataclass(frozen=True)
class LatentVariableConfig:
    """Architecture and bottleneck weight of the latent-variable model. Hashable.

    Attributes:
      model: the encoder and predictor (as `hjepa.model`); `model.action_size` is the task's A.
      latent_variable_size: U, the size of u.
      inference_hidden: hidden layer sizes of the inference network q(u | z_t, z_{t+1}).
      kl_weight: β, the weight of KL(q ‖ N(0, I)) in the loss (the bottleneck).
    """

    model: ModelConfig
    latent_variable_size: int = 2
    inference_hidden: tuple[int, ...] = (128, 128)
    kl_weight: float = 0.01

    def validate(self) -> None:
        self.model.validate()
        if self.model.takes_pixels:
            raise ValueError(f"model: the latent-variable model takes state observations "
                             f"(encoder 'mlp'), got encoder {self.model.encoder!r}")
        u = self.latent_variable_size
        if not is_int(u) or u <= 0:
            raise ValueError(f"latent_variable_size: expected a positive integer, got {u!r}")
        if any(int(s) <= 0 for s in self.inference_hidden):
            raise ValueError(f"inference_hidden: expected positive layer sizes, got "
                             f"{self.inference_hidden}")
        check_nonnegative_number("kl_weight", self.kl_weight)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """A goal-conditioned policy over latents (`hjepa.policy`) and how it is distilled from
    the planner (`hjepa.distill`). Hashable.

    Attributes:
      hidden: hidden layer sizes of the MLP [z, g - z] -> action.
      steps, batch_size, learning_rate, seed: each fit on the labels gathered so far.
      rounds: labelling rounds: the planner acts in round 0; from round 1 the policy fitted
        so far acts, with the planner's action taken at a share `expert_share ** round` of
        the steps (DAgger), and the planner labels every visited state.
      episodes: practice episodes per round (start/goal pairs of `hjepa.splits.practice_key`,
        never evaluated on).
      expert_share: see `rounds` (in [0, 1]).
    """

    hidden: tuple[int, ...] = (256, 256)
    steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0
    rounds: int = 3
    episodes: int = 128
    expert_share: float = 0.5

    def validate(self) -> None:
        for name in ("steps", "batch_size", "rounds", "episodes"):
            check_positive_int(name, getattr(self, name))
        if not self.hidden or any(not is_int(h) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer sizes, got {self.hidden!r}")
        check_positive_number("learning_rate", self.learning_rate)
        check_nonnegative_number("expert_share", self.expert_share)
        if self.expert_share > 1:
            raise ValueError(f"expert_share: expected a share in [0, 1], got "
                             f"{self.expert_share!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: dict) -> PolicyConfig:
        """A `PolicyConfig` from its JSON form (lists back to tuples)."""
        data = dict(data)
        data["hidden"] = tuple(data["hidden"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    """How closed-loop evaluation plans: the one place of the planner settings that the CLI,
    the demo, the shipped runs and the benchmarks use. Hashable.

    Attributes:
      planner: "mppi", "cem", "gd" (gradient descent) or "beam" (`planners.<name>`).
      horizon: H, actions per plan (primitive actions at level 1).
      options: the planner's own keyword arguments, with its own names (e.g.
        `num_samples`, `iterations`, `temperature`, `noise_std`, `noise_decay` for MPPI), as
        a tuple of (name, value) pairs; a name left out takes the planner's default.
      high_horizon: hierarchical models: macro-actions per plan of every upper level.
      high_options: hierarchical models: options of the upper levels that differ from
        `options` (MPPI's noise over the macro box [-1, 1]: `noise_std` 1.0, no decay).
      snap_radius: hierarchical models: subgoals within this latent distance of the goal
        become the goal (None: never).
      critic: plan on the run's critic (learned steps to go) instead of the latent distance.
    """

    planner: str = "mppi"
    horizon: int = 16
    options: tuple[tuple[str, object], ...] = (
        ("iterations", 4), ("noise_decay", 0.6), ("noise_std", 0.3), ("num_samples", 256),
        ("temperature", 0.03))
    high_horizon: int = 8
    high_options: tuple[tuple[str, object], ...] = (("noise_std", 1.0), ("noise_decay", 1.0))
    snap_radius: float | None = None
    critic: bool = False

    @classmethod
    def of(cls, planner: str = "mppi", horizon: int = 16, **options) -> PlannerConfig:
        """`PlannerConfig.of("cem", 12, num_samples=64)`: options as keyword arguments."""
        return cls(planner=planner, horizon=horizon, options=tuple(sorted(options.items())))

    def function(self):
        """The planner itself: `planners.mppi`, `cem`, `gradient_descent` or `beam_search`."""
        import planners

        return getattr(planners, PLANNER_FUNCTIONS[self.planner])

    def kwargs(self) -> dict:
        """The planner's keyword arguments (level 1 of a hierarchy)."""
        return dict(self.options)

    def high_kwargs(self) -> dict:
        """The keyword arguments of a hierarchy's upper levels."""
        return {**dict(self.options), **dict(self.high_options)}

    def replace(self, **changes) -> PlannerConfig:
        """A copy with fields replaced; option names go into `options` (None: keep)."""
        fields = {f.name for f in dataclasses.fields(self)}
        options = dict(self.options)
        for name in [n for n in changes if n not in fields]:
            value = changes.pop(name)
            if value is not None:
                options[name] = value
        return dataclasses.replace(self, options=tuple(sorted(options.items())), **changes)

    def validate(self) -> None:
        if self.planner not in PLANNER_NAMES:
            raise ValueError(f"planner: expected one of {list(PLANNER_NAMES)}, got "
                             f"{self.planner!r}")
        check_positive_int("horizon", self.horizon)
        check_positive_int("high_horizon", self.high_horizon)
        if self.snap_radius is not None:
            check_positive_number("snap_radius", self.snap_radius)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "options": dict(self.options),
                "high_options": dict(self.high_options)}


PLANNER_NAMES = ("mppi", "cem", "gd", "beam")
# PlannerConfig.planner -> the function of `planners` it names
PLANNER_FUNCTIONS = {"mppi": "mppi", "cem": "cem", "gd": "gradient_descent",
                     "beam": "beam_search"}
