"""The few distributions the learners need, written out because each is a handful of lines and their numerics
matter: a tanh-squashed diagonal Gaussian (SAC) with the change-of-variables correction computed stably as
``2·(log 2 − u − softplus(−2u))`` (never ``log(1 − tanh² + ε)``, which biases the entropy near the bounds), a
diagonal Gaussian (continuous PPO) and a categorical over logits (discrete PPO).

Deliberately not here: a general distribution library (distrax / tfp would add a dependency for five functions).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOG_2PI = jnp.log(2 * jnp.pi)


def gaussian_log_prob(x, mean, log_std):
    """Sum over the last axis of log N(x; mean, exp(log_std)²)."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std):
    return jnp.sum(log_std + 0.5 * (1.0 + LOG_2PI), axis=-1)


def tanh_log_det_jacobian(u):
    """log |d tanh(u) / du| summed over the last axis, stable for large |u|."""
    return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def sample_tanh_gaussian(key, mean, log_std):
    """A reparameterized sample ``y = tanh(u)``, ``u ~ N(mean, std²)``, and ``log p(y)``."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return jnp.tanh(u), gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


# A clipped expert's actions lie on the box edge, where atanh(±1) = ±inf: the pre-image is clipped to |y| <= 1 − ε.
# ε = 1e-6 is ~17 float32 ulps below 1 (rounding cannot reach 1); atanh(1 − ε) ≈ 7.25 keeps log π finite.
EDGE_EPS = 1e-6


def tanh_gaussian_log_prob(y, mean, log_std):
    """``log p(y)`` of a given ``y`` in [−1, 1] under ``tanh(N(mean, std²))`` (BC's likelihood of demonstrated
    actions, AIRL's log π of expert actions), edge values pulled in by ``EDGE_EPS``."""
    u = jnp.arctanh(jnp.clip(y, -1.0 + EDGE_EPS, 1.0 - EDGE_EPS))
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


def categorical_log_prob(logits, action):
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits):
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


class BoxTanhGaussian:
    """A tanh-squashed diagonal Gaussian mapped affinely onto an action box ``[low, high]`` (SAC's and CRL's
    actor): ``a = tanh(u)·scale + bias`` with ``log p(a) = log p(tanh u) − Σ log scale``."""

    def __init__(self, low, high):
        low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
        self.scale, self.bias = (high - low) / 2, (high + low) / 2
        self.log_scale = jnp.sum(jnp.log(self.scale))

    def sample(self, key, mean, log_std):
        """A reparameterized action in the box and its log-density."""
        y, logp = sample_tanh_gaussian(key, mean, log_std)
        return y * self.scale + self.bias, logp - self.log_scale

    def mode(self, mean):
        """The deterministic action ``tanh(mean)`` in the box."""
        return jnp.tanh(mean) * self.scale + self.bias

    def log_prob(self, action, mean, log_std):
        """``log p(action)`` of box actions (edge values pulled in, as ``tanh_gaussian_log_prob``)."""
        y = (jnp.reshape(action, mean.shape) - self.bias) / self.scale
        return tanh_gaussian_log_prob(y, mean, log_std) - self.log_scale
