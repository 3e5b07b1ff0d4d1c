"""Policy evaluation on JAX-native envs: complete episodes of ``agent.act`` in parallel, fully compiled.

Used by every learner's ``Trainer.evaluate`` (deterministic returns between chunks) and by ``rlkit eval``.
Besides the mean return (``eval_return``, the unweighted sum of all reward terms, as before), it reports what the
multi-critic experiments compare, generically: the mean return of each named reward term (``eval_return/<term>``,
envs with several terms) and, when the env's ``info`` carries them, ``success`` (``eval_success``: fraction of
episodes that end on a success step; ``eval_success_any``: fraction with a success at any step) and
``safety_violation`` (``eval_safety_violations``: mean number of violating steps per episode). Which keys exist
is read from the env's step output at trace time, so no env is special-cased here.

``conditioned_trajectories`` plays an agent with the skills (or goals) a function chooses and returns the
observation trajectories: the skill-discovery papers' coverage and zero-shot goal-reaching measurements.

Deliberately not here: videos (``envs`` render functions, vmapped over a trajectory) and host-side Gymnasium
evaluation (``rlkit.host_loop``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.core import Environment
from rlkit.agent import Agent

SUCCESS_KEY, VIOLATION_KEY = "success", "safety_violation"


def evaluate_policy(
    env: Environment,
    agent: Agent,
    agent_state,
    key,
    *,
    params=None,
    num_episodes: int = 10,
    mode: str = "deterministic",
) -> dict[str, jax.Array]:
    """Means over ``num_episodes`` complete episodes (one per env, all in parallel) of ``agent.act``: the return,
    per-term returns, success and safety-violation statistics (see the module docstring for the keys)."""
    horizon = env.spec.max_episode_steps
    if not horizon:
        raise ValueError(f"evaluate_policy needs a time-limited env; {env.spec.id} has no max_episode_steps")
    params = env.default_params if params is None else params
    names = env.spec.reward_names
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), params)
    keys = jax.random.split(run_key, num_episodes)
    action = jax.eval_shape(
        lambda: jax.vmap(agent.act, in_axes=(None, 0, 0, None))(agent_state, obs, keys, mode)
    )
    info_shape = jax.eval_shape(
        lambda a: jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, a, params), action
    )[-1]
    has_success, has_violation = SUCCESS_KEY in info_shape, VIOLATION_KEY in info_shape
    zeros = jnp.zeros(num_episodes)

    def flag(info, key_):
        return jnp.reshape(info[key_], (num_episodes,)).astype(jnp.float32)

    def step(carry, k):
        obs, state, alive, acc = carry
        act_key, step_key = jax.random.split(k)
        a = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            agent_state, obs, jax.random.split(act_key, num_episodes), mode
        )
        obs, state, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, num_episodes), state, a, params
        )
        r = jnp.reshape(r, (num_episodes, -1))
        acc = dict(acc)
        acc["return"] = acc["return"] + alive * jnp.sum(r, axis=-1)
        acc["terms"] = acc["terms"] + alive[:, None] * r
        if has_success:
            success = flag(info, SUCCESS_KEY)
            acc["success_final"] = jnp.where(alive > 0, success, acc["success_final"])
            acc["success_any"] = jnp.maximum(acc["success_any"], alive * success)
        if has_violation:
            acc["violations"] = acc["violations"] + alive * flag(info, VIOLATION_KEY)
        alive = alive * (1.0 - jnp.logical_or(term, trunc).astype(jnp.float32))
        return (obs, state, alive, acc), None

    acc = {"return": zeros, "terms": jnp.zeros((num_episodes, len(names)))}
    acc |= {"success_final": zeros, "success_any": zeros} if has_success else {}
    acc |= {"violations": zeros} if has_violation else {}
    init = (obs, state, jnp.ones(num_episodes), acc)
    (_, _, _, acc), _ = jax.lax.scan(step, init, jax.random.split(run_key, horizon))
    out = {"eval_return": jnp.mean(acc["return"])}
    if len(names) > 1:
        for i, name in enumerate(names):
            out[f"eval_return/{name}"] = jnp.mean(acc["terms"][:, i])
    if has_success:
        out["eval_success"] = jnp.mean(acc["success_final"])
        out["eval_success_any"] = jnp.mean(acc["success_any"])
    if has_violation:
        out["eval_safety_violations"] = jnp.mean(acc["violations"])
    return out


def conditioned_trajectories(
    env: Environment, act, choose_z, n: int, key, *, every: int = 0, horizon: int | None = None
) -> jax.Array:
    """The observations ``float[n, T + 1, D]`` (the start included) of ``n`` episodes of ``env`` (unconditioned)
    played in parallel by ``act(obs, z, key)``, ``T = horizon`` (default the env's ``max_episode_steps``).

    ``choose_z(i, obs) -> z`` gives episode ``i``'s skill or goal from its first observation and, with ``every = K
    > 0``, again every K steps (zero-shot goal reaching re-chooses z as the state changes). The episodes run the
    full horizon: for the skill papers' coverage and reaching figures on envs that do not terminate."""
    horizon = horizon or env.spec.max_episode_steps

    def episode(i, key):
        k0, k1 = jax.random.split(key)
        obs, s = env.reset(k0)

        def step(carry, xs):
            obs, s, z = carry
            t, kk = xs
            ka, ks = jax.random.split(kk)
            if every:
                z = jnp.where(t % every == 0, choose_z(i, obs), z)
            a = act(obs, z, ka)
            obs, s, *_ = env.step(ks, s, a)
            return (obs, s, z), obs

        z0 = choose_z(i, obs)
        xs = (jnp.arange(horizon), jax.random.split(k1, horizon))
        _, traj = jax.lax.scan(step, (obs, s, z0), xs)
        return jnp.concatenate([obs[None], traj])

    return jax.jit(jax.vmap(episode))(jnp.arange(n), jax.random.split(key, n))
