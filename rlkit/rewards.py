"""Learned reward terms and the one combinator that puts them in front of any learner (SAC, TD3, PPO).

A reward term is a pure function with its own parameters and update (DIAYN's skill discriminator, METRA's φ,
GAIL / AIRL discriminators, optimal-transport rewards)::

    init(key, spec)            -> state
    reward(state, batch)       -> float32[B]
    update(state, batch, key)  -> (state, metrics)
    update(state, batch, key, log_pi) -> (state, metrics)    # a term with needs_policy=True

A term that needs the learner's current policy (AIRL's discriminator logit f − log π(a|s), on its own expert and
policy rows) sets ``needs_policy`` and gets ``log_pi(obs, action) -> float[B]``: the base learner's
``Agent.log_prob`` at its current state, on raw observations (an on-policy learner that normalizes observations
normalizes them inside ``log_pi`` as its policy does). Its gradient never reaches the policy.

``with_reward_terms(make_base, make_terms)`` builds an agent whose ``update`` does, per sampled batch:

1. update every term on the batch (``term.update``),
2. recompute every term's reward on that batch with the *updated* parameters — never a reward stored at
   collection time, which would lag the discriminator by up to the buffer's age (DIAYN, METRA and URLB all
   relabel the sampled batch),
3. stack them after the env's own reward terms as named reward terms (``spec.reward_names`` + the terms' names),
   so the base learner sees a vector reward: summed with its ``reward_weights``, or one critic per term with
   ``multi_critic``,
4. run the base learner's update on the relabelled batch.

With no terms and the env's reward kept, the agent *is* the base agent: the same state structure, and the same
update bit for bit (the key is passed through unsplit; tested). ``act`` is the base agent's.

On-policy learners (an ``rlkit.on_policy.OnPolicyAgent``, e.g. PPO) are wrapped the same way, but the terms
label the *rollout* before GAE rather than a sampled batch: the composed agent's ``label`` runs steps 1–3 on the
whole flattened rollout (one update of every term on it, then its rewards with the updated parameters), and the
on-policy learner scalarizes or keeps the stacked terms, normalizes them and runs GAE and the epochs of the base
update, unchanged. The terms see raw observations (``obs``, ``next_obs``), never the normalized ones the policy
sees. With no terms and the env's reward kept, the PPO agent relabels nothing (no ``label``): the base learner's
program.

Deliberately not here: the terms themselves (they live in their family's package, e.g. ``agents.skills``), and
several term updates per rollout (a term that wants minibatches over the rollout does them in its ``update``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import EnvSpec
from rlkit import devices
from rlkit.agent import Agent
from rlkit.configs import ConfigError
from rlkit.on_policy import OnPolicyAgent


@dataclass(frozen=True)
class RewardTerm:
    """One learned reward term; ``name`` becomes its entry in ``reward_names`` (and its metrics' prefix)."""

    name: str
    init: Callable[[jax.Array, EnvSpec], Any]
    reward: Callable[[Any, dict], jax.Array]
    update: Callable[..., tuple[Any, dict]]
    needs_policy: bool = False  # update(state, batch, key, log_pi)


@struct.dataclass
class TermsState:
    base: Any  # the base learner's state
    terms: tuple  # one state per reward term, in order


def repeated(term: RewardTerm, steps: int, batch_size: int) -> RewardTerm:
    """``term`` taking ``steps`` updates per call, each on ``batch_size`` rows of the batch it is given, drawn at
    random without replacement (all rows when the batch is smaller); metrics averaged over the steps. For
    on-policy learners, whose terms see one labelled rollout per iteration: a single step on it would leave a
    model that the papers train with thousands of minibatch steps (METRA's φ at lr 1e-4) far behind."""
    if steps < 1 or batch_size < 1:
        raise ConfigError(
            f"reward term {term.name!r}: steps = {steps}, batch_size = {batch_size}; both must be >= 1"
        )

    def update(state, batch, key, *args):
        n = jax.tree.leaves(batch["obs"])[0].shape[0]
        size = min(
            devices.local(batch_size, f"reward term {term.name!r}'s batch_size"), n
        )  # this device's share

        def step(state, k):
            k_rows, k_update = jax.random.split(k)
            rows = jax.random.permutation(k_rows, n)[:size]
            return term.update(state, jax.tree.map(lambda x: x[rows], batch), k_update, *args)

        state, metrics = jax.lax.scan(step, state, jax.random.split(key, steps))
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return RewardTerm(term.name, term.init, term.reward, update, term.needs_policy)


def term_names(spec: EnvSpec, names: Sequence[str], env_reward: bool) -> tuple[str, ...]:
    """The reward names the base learner sees: the env's (when kept) then the terms'; clashes raise one line."""
    out = (tuple(spec.reward_names) if env_reward else ()) + tuple(names)
    if not out:
        raise ConfigError("no reward terms: keep the env's reward (env_reward=True) or add a learned term")
    if len(set(out)) != len(out):
        raise ConfigError(f"reward term names must be distinct; got {list(out)} (env terms first)")
    return out


def with_reward_terms(
    make_base: Callable[[Any, EnvSpec], Agent],
    make_terms: Callable[[Any, EnvSpec], Sequence[RewardTerm]],
    *,
    env_reward: bool | Callable[[Any], bool] = True,
    name: str | None = None,
) -> Callable[[Any, EnvSpec], Agent]:
    """``make_agent(config, spec)`` of the composed learner.

    ``make_terms(config, spec)`` builds the terms (inside traced code, so their coefficients may be swept);
    ``env_reward`` keeps the env's reward terms in front of them (``False``: the learned terms only, e.g.
    unsupervised skill discovery; a callable reads it from the config). The base learner is built with
    ``spec.replace(reward_names=...)``, so its ``reward_weights`` index the stacked terms."""

    def make_agent(config, spec: EnvSpec) -> Agent:
        terms = tuple(make_terms(config, spec))
        keep = env_reward(config) if callable(env_reward) else env_reward
        names = term_names(spec, [t.name for t in terms], keep)
        base = make_base(config, spec.replace(reward_names=names))
        k_env = spec.num_reward_terms
        for t in terms:
            if t.needs_policy and base.log_prob is None:
                raise ConfigError(
                    f"reward term {t.name!r} needs the learner's log π(a|s) and {base.name} offers none "
                    "(SAC, PPO and BC do)"
                )
        identity = not terms and keep  # nothing to add: exactly the base update (same key)

        def init(key, spec_=None) -> TermsState:
            if not terms:  # the base agent's own initial state
                return TermsState(base.init(key), ())
            keys = jax.random.split(key, len(terms) + 1)
            return TermsState(base.init(keys[0]), tuple(t.init(k, spec) for t, k in zip(terms, keys[1:])))

        def act(state: TermsState, obs, key, mode="explore"):
            return base.act(state.base, obs, key, mode)

        def policy_of(base_state, obs_fn=lambda o: o):
            """``log_pi(obs, action)`` of the base learner at ``base_state``, gradient-free."""
            if base.log_prob is None:
                return None
            return lambda obs, a: jax.lax.stop_gradient(base.log_prob(base_state, obs_fn(obs), a))

        log_prob = None
        if base.log_prob is not None:
            log_prob = lambda state, obs, a: base.log_prob(state.base, obs, a)  # noqa: E731

        def relabel(term_states, batch, keys, log_pi):
            """Steps 1–3 (one key per term): ``(new term states, reward [B, R], metrics)``."""
            new_terms, rewards, metrics = [], [], {}
            for term, term_state, k in zip(terms, term_states, keys):
                args = (log_pi,) if term.needs_policy else ()
                term_state, m = term.update(term_state, batch, k, *args)
                r = jax.lax.stop_gradient(term.reward(term_state, batch))  # with the updated parameters
                batch_size = jax.tree.leaves(batch["obs"])[0].shape[0]
                if r.shape != (batch_size,):
                    raise ConfigError(
                        f"reward term {term.name!r} returned shape {r.shape}; expected ({batch_size},), one "
                        "reward per row of the batch"
                    )
                new_terms.append(term_state)
                rewards.append(r.astype(jnp.float32))
                metrics |= {f"{term.name}/{k_}": v for k_, v in m.items()}
                metrics[f"reward/{term.name}"] = jnp.mean(r)
            parts = [jnp.reshape(batch["reward"], (-1, k_env))] if keep else []
            return tuple(new_terms), jnp.concatenate(parts + [r[:, None] for r in rewards], axis=-1), metrics

        def update(state: TermsState, batch, key):
            if identity or isinstance(base, OnPolicyAgent):  # on-policy: the rollout was labelled already
                base_state, metrics = base.update(state.base, batch, key)
                return TermsState(base_state, state.terms), metrics
            keys = jax.random.split(key, len(terms) + 1)
            new_terms, reward, metrics = relabel(state.terms, batch, keys[1:], policy_of(state.base))
            reward = reward[:, 0] if reward.shape[-1] == 1 else reward
            base_state, base_metrics = base.update(state.base, dict(batch, reward=reward), keys[0])
            return TermsState(base_state, new_terms), base_metrics | metrics

        if not isinstance(base, OnPolicyAgent):
            return Agent(name or base.name, config, init, act, update, log_prob)

        def label(state: TermsState, batch, key, obs_fn=lambda o: o):
            keys = jax.random.split(key, len(terms))
            new_terms, reward, metrics = relabel(state.terms, batch, keys, policy_of(state.base, obs_fn))
            return TermsState(state.base, new_terms), reward, metrics

        return OnPolicyAgent(
            name or base.name,
            config,
            init,
            act,
            update,
            log_prob,
            sample=lambda state, obs, key: base.sample(state.base, obs, key),
            value=lambda state, obs: base.value(state.base, obs),
            label=None if identity else label,
            reward_names=names,
        )

    return make_agent
