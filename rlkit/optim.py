"""One gradient step, the way every learner in rlkit takes it.

``gradient_step(loss_fn, params, opt_state, tx)`` is ``jax.value_and_grad`` → ``rlkit.devices.batch_mean`` →
``tx.update`` → ``optax.apply_updates``. The middle step is why it exists: when one run's batch is split over
several devices (``train(devices_per_run=k)``), each device holds the gradient of its share of the batch and the
copies of the agent stay equal only if every step averages them first; a learner that forgets it trains k drifting
copies. Taking the step here makes that impossible to forget (on one device ``batch_mean`` is the identity, so the
step is exactly the four calls). ``gradient_steps`` scans it over a sequence of minibatches (a discriminator's
``disc_steps``, epochs of minibatches), so no algorithm file needs a loop of its own for that.

Written here rather than taken from a library: optax supplies the transformation and ``apply_updates`` but not the
step, and flax's ``TrainState`` bundles parameters, optimizer state and an ``apply_fn`` into one object, while
rlkit's agent states keep parameters and optimizer states as plain fields of one pytree (the runs axis vmaps and
shards them, checkpoints save them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from rlkit import devices


def gradient_step(
    loss_fn: Callable, params, opt_state, tx: optax.GradientTransformation, *args, has_aux: bool = False
) -> tuple[Any, Any, Any]:
    """One step of ``tx`` on ``loss_fn(params, *args)`` → ``(params, opt_state, out)``; ``out`` is the loss, or
    ``(loss, aux)`` with ``has_aux`` (what ``jax.value_and_grad`` returns). The gradient is the whole batch's when a
    run spans several devices (``rlkit.devices.batch_mean``)."""
    out, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *args)
    grads = devices.batch_mean(grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, out


def gradient_steps(
    loss_fn: Callable, params, opt_state, tx: optax.GradientTransformation, xs, *, has_aux: bool = False
) -> tuple[Any, Any, Any]:
    """``gradient_step`` once per entry of ``xs``'s leading axis, in order (``loss_fn(params, x)``; a scan) →
    ``(params, opt_state, outs)``, ``outs`` every step's ``out`` stacked along a leading axis."""

    def step(carry, x):
        params, opt_state, out = gradient_step(loss_fn, *carry, tx, x, has_aux=has_aux)
        return (params, opt_state), out

    (params, opt_state), outs = jax.lax.scan(step, (params, opt_state), xs)
    return params, opt_state, outs
