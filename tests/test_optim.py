"""``rlkit.optim``: the one gradient step every learner takes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlkit import optim


def loss(params, x):
    return jnp.mean(jnp.square(x @ params["w"] + params["b"] - 1.0)), {"scale": jnp.abs(params["w"]).sum()}


def test_a_step_is_value_and_grad_then_the_optimizer_and_a_scan_steps_in_order():
    params = {"w": jnp.arange(6.0).reshape(3, 2) / 10, "b": jnp.zeros(2)}
    tx = optax.adam(0.1)
    xs = jax.random.normal(jax.random.key(0), (4, 8, 3))

    (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, xs[0])
    updates, opt = tx.update(grads, tx.init(params), params)
    stepped, opt_state, (v, a) = optim.gradient_step(loss, params, tx.init(params), tx, xs[0], has_aux=True)
    assert v == value and a["scale"] == aux["scale"]
    jax.tree.map(np.testing.assert_array_equal, stepped, optax.apply_updates(params, updates))
    jax.tree.map(np.testing.assert_array_equal, opt_state, opt)

    p, o, outs = params, tx.init(params), []
    for x in xs:  # one after another, each step from the last one's parameters
        p, o, (v, _) = optim.gradient_step(loss, p, o, tx, x, has_aux=True)
        outs.append(v)
    scanned, _, (values, auxes) = jax.jit(
        lambda p, o: optim.gradient_steps(loss, p, o, tx, xs, has_aux=True)
    )(params, tx.init(params))
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6), scanned, p)
    np.testing.assert_allclose(values, np.stack(outs), rtol=1e-6)
    assert values.shape == (4,) and auxes["scale"].shape == (4,) and values[-1] < values[0]
