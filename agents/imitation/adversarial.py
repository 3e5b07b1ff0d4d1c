"""Adversarial imitation's discriminator as a learned reward term (``rlkit.rewards``), shared by GAIL and AIRL.

Checked against HumanCompatibleAI/imitation (``algorithms/adversarial/common.py``, ``gail.py``, ``airl.py``) and
Kostrikov et al. 2019 ("Discriminator-Actor-Critic", DAC) for the off-policy learner:

- balanced batches: every discriminator step takes ``disc_batch_size`` expert transitions (uniform over the
  demonstrations) and as many policy transitions; expert label 1; binary cross-entropy on logits;
- policy rows from a small recent window: on-policy, the rollout just collected (imitation's generator buffer
  holds one round); off-policy, the newest ``disc_window`` replay transitions (imitation's tuned 512), drawn as
  the side batch ``batch["policy"]`` (``rlkit.data_sources.with_side_batches``) while the learner trains on all of
  replay;
- running normalization of the discriminator's observation inputs (imitation's ``RunningNorm``, updated on the
  expert and policy rows it is trained on) and of the reward the learner sees (below); actions enter as one-hot
  (discrete) or scaled to [−1, 1] (boxes; a PPO sample outside the box is clipped, as the env executed it);
- an optional gradient penalty ``disc_gp_weight · (‖∇ₓ logit‖ − 1)²`` on inputs interpolated between expert and
  policy rows (WGAN-GP; DAC uses 10);
- GAIL's logit is D(s, a) and its reward −log(1 − σ(logit)) = softplus(logit); AIRL's logit is
  f(s, a, s′) − log π(a|s) with the shaped f = g(s) + γ h(s′) − h(s) (g on (s, a) with ``airl_state_only=False``),
  h(s′) = 0 after a termination, log π the learner's current policy (``RewardTerm.needs_policy``), and the
  learner's reward is f (imitation's ``reward_train``; the −log π half of log D − log(1 − D) is the entropy term of
  the learner itself).

Survival bias — handled with absorbing states (DAC), not fixed horizons: GAIL's reward is always positive, so a
learner is paid for surviving, and AIRL's is signed, so it may be paid for dying early. Fixed horizons (imitation's
seals envs) would change the envs; absorbing states fix the learner instead and work on any env. A terminated
transition leads to an absorbing state s_a, and the learner's reward on a terminated row gains the value of staying
there forever, γ/(1 − γ)·r(s_a) — what bootstrapping through DAC's stored absorbing transitions converges to, with
no change to the learner (its ``1 − terminated`` bootstrap stays). Episodes are then effectively endless, so a shift
of the reward changes nothing. r(s_a) comes from the Bayes-optimal logit of s_a, log(p_E(s_a) / p_π(s_a)), computed
from each side's termination rate c (the demonstrations' exactly, the policy's as a moving average over its rows)
rather than learnt by the network from absorbing rows as DAC does. p(s_a) is s_a's occupancy in the fixed-horizon
version of the env (imitation's seals envs, H = the env's time limit): episodes of expected length min(H, 1/c)
spend the rest of H there, so p(s_a) = (H − min(H, 1/c)) / H (+ 1e-3, finite when a side never terminates); an
env without a time limit falls back to DAC's one absorbing row per terminated row, c / (1 + c). Why not learnt:
it lagged — on cartpole the policy rows were judged worse than s_a while its logit was still near 0, so dying paid
(returns 10 vs 22 untrained after 40k steps); weighting the absorbing rows by the tail's weight γ/(1 − γ) swamped
the real rows instead. Why the fixed-horizon occupancy, not DAC's per-row mass: the network's logits on policy
rows are far more confident than the calibrated per-row s_a logit (about −4 for a policy dying every 20 steps), so
s_a still out-paid the policy's own states and GAIL learnt to die — PPO-GAIL on cartpole plateaued at 0.81 (5
seeds, 512k steps) and SAC-GAIL on InvertedPendulum-v5 at 0.09; with the occupancy (about −7 there) cartpole
reaches 500 in 204,800 steps (README).
``absorbing=False`` turns it off (an env that never terminates is unaffected either way).

Reward normalization: the learner's reward is divided by the running std of the per-step rewards (the absorbing
bonus by the same σ); imitation also subtracts the running mean, which is harmless only when no episode ends
early, so here only the scale is normalized and the sign of each term's reward is kept.

The term's rewards are recomputed on every sampled batch with the updated discriminator (``rlkit.rewards``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.core import EnvSpec
from envs.spaces import Box, Discrete
from rlkit import configs, devices, optim, running_stats
from rlkit.buffers import DemoStore
from rlkit.buffers.demos import sample_transitions
from rlkit.configs import ConfigError, param
from rlkit.networks import MLP
from rlkit.rewards import RewardTerm
from rlkit.running_stats import RunningMeanStd

KINDS = ("gail", "airl")
ABSORBING_EPS = (
    1e-3  # pseudo-rate of terminations: keeps the absorbing logit finite when a side never terminates
)
ABSORBING_RATE = 0.1  # rate of the moving average of the policy's termination rate, per discriminator update


@struct.dataclass
class AdversarialConfig:
    """The discriminator's fields, mixed into a learner's config (``GAILConfig(SACConfig, AdversarialConfig)``)."""

    disc_hidden_sizes: tuple[int, ...] = param((64, 64), static=True)
    """hidden layers of the discriminator (AIRL: of g and of h each)"""
    disc_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """discriminator Adam learning rate"""
    disc_batch_size: int = param(256, static=True, low=1)
    """expert rows and as many policy rows per discriminator step"""
    disc_steps: int = param(1, static=True, low=1)
    """discriminator steps per term update (off-policy: per learner update; on-policy: per rollout)"""
    disc_window: int = param(512, low=1)
    """off-policy: policy rows come from the newest disc_window replay transitions"""
    disc_gp_weight: float = param(0.0, static=True, low=0.0)
    """weight of the gradient penalty on interpolated inputs (0 = off; DAC uses 10)"""
    disc_normalize_inputs: bool = param(True, static=True)
    """running normalization of the discriminator's observation inputs"""
    disc_normalize_reward: bool = param(True, static=True)
    """divide the learner's reward by the running std of the per-step rewards"""
    absorbing: bool = param(True, static=True)
    """absorbing states for terminated transitions (the survival-bias fix; see the module docstring)"""
    airl_state_only: bool = param(False, static=True)
    """AIRL: g(s) (the paper's disentangled, state-only reward) instead of g(s, a) (imitation's default; measured
    on pendulum, whose reward has a torque cost: AIRL-SAC 0.95 with g(s, a) vs 0.49 with g(s))"""
    gail_input: str = param("state_action", static=True, choices=("state_action", "states"))
    """GAIL: D(s, a), or D(s, s′) ("states": GAIfO, Torabi et al. 2018 — learns from observations only)"""


@struct.dataclass
class DiscriminatorState:
    params: Any  # {"g": ..., "h": ...}; GAIL's logit is g
    opt: Any
    obs_stats: RunningMeanStd  # of the discriminator's observation inputs
    reward_stats: RunningMeanStd  # of the per-step rewards the learner saw (their std scales the reward)
    policy_term_rate: jax.Array  # float32[]: moving average of the fraction of policy rows that terminated


def needs_actions(config, kind: str) -> bool:
    """Whether the discriminator reads expert actions (all but GAIL on states, D(s, s′))."""
    return not (kind == "gail" and config.gail_input == "states")


def check_demos(config, spec: EnvSpec, demos: DemoStore | None, kind: str, name: str) -> None:
    """Refuse demonstrations the discriminator cannot use (one line, before compiling)."""
    from rlkit.buffers.datasets import check_demos_match

    if demos is not None:
        if demos.actions is None and needs_actions(config, kind):
            raise ConfigError(
                f"{name} needs demonstrations with actions and these hold observations only; GAIL with "
                "gail_input='states' (gail, gail-sac: D(s, s′), GAIfO) learns from observations only"
            )
        check_demos_match(demos, spec, need_actions=needs_actions(config, kind))
    if not isinstance(spec.action_space, Box | Discrete):
        raise ConfigError(
            f"adversarial imitation needs Box or Discrete actions; {spec.id} has {spec.action_space}"
        )
    if config.absorbing and not 0.0 <= float(config.gamma) < 1.0:
        raise ConfigError(
            f"absorbing=True needs gamma < 1 (the absorbing value is r/(1 − γ)); gamma = {config.gamma}"
        )


def discriminator(
    config, spec: EnvSpec, demos: DemoStore | None, *, kind: str, policy_rows: str
) -> RewardTerm:
    """The reward term named ``kind``. ``policy_rows``: "side" (off-policy: ``batch["policy"]``) or "batch" (the
    rollout itself). ``demos`` may be None for an agent that is only evaluated (``rlkit.export.load_agent``)."""
    if kind not in KINDS or policy_rows not in ("side", "batch"):
        raise ConfigError(f"discriminator kind={kind!r}, policy_rows={policy_rows!r}")
    space, airl = spec.action_space, kind == "airl"
    discrete = isinstance(space, Discrete)
    obs_size = int(np.prod(spec.observation_space.shape))
    act_size = space.n if discrete else int(np.prod(space.shape))
    g_actions = not (airl and config.airl_state_only) and needs_actions(config, kind)
    g_next = not airl and not needs_actions(config, kind)  # GAIfO: D(s, s′)
    g_size = obs_size + (act_size if g_actions else 0) + (obs_size if g_next else 0)
    expert_rate = float(np.mean(np.asarray(demos.terminations))) if demos is not None else 0.0
    horizon = float(spec.max_episode_steps) if spec.max_episode_steps else None
    # in a Sequential: the parameter layout saved files hold (MLP once shadowed Module.init)
    g_net = nn.Sequential([MLP(config.disc_hidden_sizes, 1)])
    h_net = nn.Sequential([MLP(config.disc_hidden_sizes, 1)])
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.disc_lr)
    if not discrete:
        scale = jnp.asarray((space.high - space.low) / 2, jnp.float32).reshape(-1)
        bias = jnp.asarray((space.high + space.low) / 2, jnp.float32).reshape(-1)

    def action_features(a):
        if discrete:
            return jax.nn.one_hot(a.reshape(-1), space.n)
        return jnp.clip((a.reshape(a.shape[0], -1) - bias) / scale, -1.0, 1.0)

    def env_action(a):  # what log π is evaluated at: the executed action
        return a if discrete else jnp.clip(a, space.low, space.high)

    def norm(state, obs):
        x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        return running_stats.normalize(state.obs_stats, x) if config.disc_normalize_inputs else x

    def rows(state, batch, log_pi=None):
        """The discriminator's inputs of transition rows: ``s, a, s′`` features, terminated, and log π (AIRL)."""
        n = batch["terminated"].shape[0]
        r = {
            "s": norm(state, batch["obs"]),
            "a": action_features(batch["action"]) if g_actions else jnp.zeros((n, 0), jnp.float32),
            "s2": norm(state, batch["next_obs"]),
            "term": batch["terminated"].astype(jnp.float32).reshape(-1),
        }
        if airl and log_pi is not None:  # log π needs the actions (AIRL always has them)
            r["log_pi"] = log_pi(batch["obs"], env_action(batch["action"]))
        return r

    def g(params, s, a, s2):
        return g_net.apply(params["g"], jnp.concatenate([s, a] + ([s2] if g_next else []), axis=-1))[:, 0]

    def f_and_reward(params, r, gamma):
        """Per row: (logit without −log π, the learner's per-step reward)."""
        base = g(params, r["s"], r["a"], r["s2"])
        if not airl:
            return base, jax.nn.softplus(base)
        h = lambda s: h_net.apply(params["h"], s)[:, 0]  # noqa: E731
        f = base + gamma * (1.0 - r["term"]) * h(r["s2"]) - h(r["s"])
        return f, f

    def absorbing_reward(state):
        """The absorbing state's reward from its Bayes-optimal logit log(p_E(s_a) / p_π(s_a)), where a side that
        terminates a fraction c of its rows puts mass c / (1 + c) on s_a (one absorbing row per terminated row);
        h(s_a) = 0 and log π there is the same on both sides, so AIRL's f(s_a) is that logit too."""

        def mass(c):
            if horizon is None:  # no time limit: one absorbing row per terminated row (DAC)
                return (c + ABSORBING_EPS) / (1.0 + c)
            # the fixed-horizon occupancy (seals): episodes of expected length min(H, 1/c) sit in s_a for the rest
            length = jnp.minimum(horizon, 1.0 / jnp.maximum(c, 1.0 / horizon))
            return (horizon - length) / horizon + ABSORBING_EPS

        logit = jnp.log(mass(expert_rate)) - jnp.log(mass(state.policy_term_rate))
        return logit if airl else jax.nn.softplus(logit)

    def logits(params, r, gamma):
        f, _ = f_and_reward(params, r, gamma)
        return f - r["log_pi"] if airl else f

    def side_loss(params, r, label, gamma):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits(params, r, gamma), label))

    def gradient_penalty(params, expert, policy, key, gamma):
        u = jax.random.uniform(key, (expert["s"].shape[0], 1))
        mixed = {k: u * expert[k] + (1 - u) * policy[k] for k in ("s", "a", "s2")}
        mixed["term"] = jnp.zeros_like(expert["term"])

        def total(x):
            return jnp.sum(f_and_reward(params, dict(mixed, **x), gamma)[0])

        grads = jax.grad(total)({k: mixed[k] for k in ("s", "a", "s2")})
        sq = sum(jnp.sum(v**2, axis=-1) for v in grads.values())
        return jnp.mean((jnp.sqrt(sq + 1e-12) - 1.0) ** 2)

    def init(key, spec_) -> DiscriminatorState:
        kg, kh = jax.random.split(key)
        params = {
            "g": g_net.init(kg, jnp.zeros((1, g_size), jnp.float32)),
            "h": h_net.init(kh, jnp.zeros((1, obs_size), jnp.float32)) if airl else {},
        }
        stats = RunningMeanStd.zeros((obs_size,))
        zero = jnp.zeros((), jnp.float32)
        return DiscriminatorState(params, tx.init(params), stats, RunningMeanStd.zeros(()), zero)

    def pick(tree, idx):
        return jax.tree.map(lambda x: x[idx], tree)

    def update(state: DiscriminatorState, batch, key, log_pi=None):
        if demos is None:
            raise ConfigError(
                f"the {kind} discriminator was built without demonstrations; it cannot be trained"
            )
        if policy_rows == "side":
            if "policy" not in batch:
                raise ConfigError(
                    f"the {kind} discriminator reads its policy rows from batch['policy'] (a recent-window side "
                    "batch: rlkit.data_sources.with_side_batches); this batch has none"
                )
            pool = batch["policy"]
        else:
            pool = batch
        n_pool = jax.tree.leaves(pool["obs"])[0].shape[0]
        b, steps = (
            devices.local(config.disc_batch_size, "disc_batch_size"),
            config.disc_steps,
        )  # this device's share
        k_exp, k_pol, k_gp = jax.random.split(key, 3)
        expert = jax.vmap(lambda k: sample_transitions(demos, k, b))(jax.random.split(k_exp, steps))
        idx = jax.random.randint(k_pol, (steps, b), 0, n_pool)
        policy = jax.vmap(lambda i: pick(pool, i))(idx)
        if config.disc_normalize_inputs:  # RunningNorm's update on what it is trained on, both sides
            x = jnp.concatenate([expert["obs"].reshape(steps * b, -1), policy["obs"].reshape(steps * b, -1)])
            state = state.replace(obs_stats=running_stats.update(state.obs_stats, x))

        def loss_fn(params, xs):  # one of the disc_steps minibatches: expert rows, policy rows, a key
            e, p, k = xs
            e_rows, p_rows = rows(state, e, log_pi), rows(state, p, log_pi)
            bce = 0.5 * (
                side_loss(params, e_rows, 1.0, config.gamma) + side_loss(params, p_rows, 0.0, config.gamma)
            )
            gp = gradient_penalty(params, e_rows, p_rows, k, config.gamma) if config.disc_gp_weight else 0.0
            return bce + config.disc_gp_weight * gp, {
                "loss/discriminator": bce,
                "gradient_penalty": gp,
                "expert_accuracy": jnp.mean(logits(params, e_rows, config.gamma) > 0),
                "policy_accuracy": jnp.mean(logits(params, p_rows, config.gamma) < 0),
            }

        params, opt, (_, metrics) = optim.gradient_steps(
            loss_fn,
            state.params,
            state.opt,
            tx,
            (expert, policy, jax.random.split(k_gp, steps)),
            has_aux=True,
        )
        rate = ABSORBING_RATE * jnp.mean(policy["terminated"]) + (1 - ABSORBING_RATE) * state.policy_term_rate
        state = state.replace(params=params, opt=opt, policy_term_rate=rate)
        _, r = f_and_reward(params, rows(state, batch), config.gamma)
        r_abs = absorbing_reward(state)
        state = state.replace(reward_stats=running_stats.update(state.reward_stats, jax.lax.stop_gradient(r)))
        metrics = jax.tree.map(lambda m: m[-1], metrics)
        return state, metrics | {"reward_raw": jnp.mean(r), "reward_absorbing": r_abs}

    def reward(state: DiscriminatorState, batch):
        r_rows = rows(state, batch)
        _, r = f_and_reward(state.params, r_rows, config.gamma)
        if config.absorbing:
            bonus = config.gamma / (1.0 - config.gamma) * absorbing_reward(state)
            r = r + r_rows["term"] * bonus
        if config.disc_normalize_reward:
            r = r / jnp.sqrt(state.reward_stats.var + 1e-8)
        return r

    return RewardTerm(kind, init, reward, update, needs_policy=airl)


def make_learner(kind: str, learner: str, name: str):
    """``(make_agent, validate, host_pieces, make_trainer)`` of ``kind`` (gail / airl) over ``learner`` (sac /
    ppo): ``learner × [the discriminator term]``, the env's reward never seen by the learner. Off-policy, the
    discriminator's policy rows are a recent-window side batch; on-policy, the rollout itself."""
    from agents import ppo, sac
    from rlkit import data_sources
    from rlkit.off_policy import make_off_policy_trainer
    from rlkit.on_policy import make_on_policy_trainer
    from rlkit.rewards import with_reward_terms

    base, base_validate = {"sac": (sac.make_sac, sac.validate), "ppo": (ppo.make_ppo, ppo.validate)}[learner]
    rows = "side" if learner == "sac" else "batch"

    def make_agent(config, spec: EnvSpec, demos: DemoStore | None = None):
        def terms(cfg, spec_):
            return [discriminator(cfg, spec_, demos, kind=kind, policy_rows=rows)]

        return with_reward_terms(base, terms, env_reward=False, name=name)(config, spec)

    def validate(config, spec: EnvSpec, demos: DemoStore | None = None) -> None:
        configs.validate(config)
        base_validate(config, spec.replace(reward_names=(kind,)))
        check_demos(config, spec, demos, kind, name)

    def data(config):
        side = data_sources.recent("disc_window"), config.disc_batch_size * config.disc_steps
        return data_sources.with_side_batches(data_sources.online(), policy=side)

    def host_pieces(config, spec: EnvSpec, *, demos: DemoStore) -> dict:
        pieces = {"make_agent": lambda c, s: make_agent(c, s, demos)}
        return pieces | ({"data": data(config)} if learner == "sac" else {})

    def make_trainer(config, env, params=None, *, demos: DemoStore):
        validate(config, env.spec, demos)
        agent = lambda c, s: make_agent(c, s, demos)  # noqa: E731
        if learner == "ppo":
            return make_on_policy_trainer(name, env, agent, config, params=params)
        return make_off_policy_trainer(name, env, agent, config, params=params, data=data(config))

    return make_agent, validate, host_pieces, make_trainer
