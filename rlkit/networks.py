"""Network factories shared by every learner: MLP torsos, Q ensembles with one output per reward term, squashed
Gaussian and deterministic actors, and value heads — ``flax.linen`` modules applied functionally.

Initialization follows the references the learners are checked against: orthogonal weights with gain √2 on
hidden layers and small output gains for PPO (CleanRL ``ppo.py``: 0.01 policy, 1.0 value); LeCun-uniform-like
defaults for SAC / TD3 (CleanRL's torch ``nn.Linear`` default is uniform(±1/√fan_in), which ``variance_scaling(1/3,
"fan_in", "uniform")`` reproduces). Critic ensembles are one ``nn.vmap``-ed module, so N critics cost one batched
matmul, and every critic outputs K values, one per named reward term (the multi-critic plumbing).

Deliberately not here: convolutional / recurrent torsos (no pixel or partially observed env yet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

torch_default_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
ACTIVATIONS: dict[str, Callable] = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu, "silu": nn.silu}


def orthogonal(scale: float = float(np.sqrt(2))):
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    output_size: int | None = None
    activation: str = "relu"
    layer_norm: bool = False
    #: "torch" (uniform ±1/√fan_in) | "orthogonal" (gain √2 hidden, output_scale output); not named ``init``,
    #: which would shadow ``Module.init`` (``MLP(...).init(key, x)`` works)
    weight_init: str = "torch"
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        hidden_init = orthogonal() if self.weight_init == "orthogonal" else torch_default_init
        out_init = orthogonal(self.output_scale) if self.weight_init == "orthogonal" else torch_default_init
        bias_init = (
            nn.initializers.zeros if self.weight_init == "orthogonal" else nn.initializers.zeros_init()
        )
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=hidden_init, bias_init=bias_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.output_size is not None:
            x = nn.Dense(self.output_size, kernel_init=out_init, bias_init=bias_init)(x)
        return x


class SpectralMLP(nn.Module):
    """An ``MLP`` whose every layer's kernel is divided by its largest singular value (flax's ``nn.SpectralNorm``,
    one power-iteration step per call): 1-Lipschitz with ReLU / tanh activations (LSD's φ). The power
    iteration's vectors live in the ``batch_stats`` collection: apply with ``update_stats=True,
    mutable=["batch_stats"]`` while training, ``update_stats=False`` otherwise."""

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, update_stats: bool = False):
        sizes = (*self.hidden_sizes, self.output_size)
        for i, size in enumerate(sizes):
            x = nn.SpectralNorm(nn.Dense(size, kernel_init=torch_default_init))(x, update_stats=update_stats)
            if i < len(sizes) - 1:
                x = ACTIVATIONS[self.activation](x)
        return x


class QEnsemble(nn.Module):
    """``num_critics`` independent Q(s, a) networks, each with ``num_terms`` outputs → ``float[num_critics, ..., K]``."""

    hidden_sizes: Sequence[int]
    num_critics: int = 2
    num_terms: int = 1
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        x = jnp.concatenate([obs, action], axis=-1)
        return ensemble(self.hidden_sizes, self.num_terms, layer_norm=self.layer_norm)(x)


class GaussianActor(nn.Module):
    """Mean and log-std of a diagonal Gaussian over pre-squash actions (SAC; CleanRL's log-std squashing)."""

    hidden_sizes: Sequence[int]
    action_size: int
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes)(obs)
        mean = nn.Dense(self.action_size, kernel_init=torch_default_init)(x)
        log_std = jnp.tanh(nn.Dense(self.action_size, kernel_init=torch_default_init)(x))
        # CleanRL sac_continuous_action.py: tanh then affine into [log_std_min, log_std_max]
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mean, log_std


class DeterministicActor(nn.Module):
    """tanh-bounded deterministic policy in [-1, 1]^A (TD3)."""

    hidden_sizes: Sequence[int]
    action_size: int

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden_sizes, self.action_size)(obs))


def count_params(params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
