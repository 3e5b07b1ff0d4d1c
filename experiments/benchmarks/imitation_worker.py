"""The peer side of ``imitation_peers``: HumanCompatibleAI ``imitation`` (BC, GAIL, AIRL) on rlkit's demos.

Run by the Python of the peer venv ``.bench-venvs/imitation`` (``imitation_peers.ensure_imitation_venv``), never
by rlkit's: it imports nothing from rlkit (that venv has no JAX), so the demonstration format is read here by
its array names (``rlkit-demos-v1``, see ``rlkit/buffers/datasets.py``).

    <peer python> experiments/benchmarks/imitation_worker.py '<job json>'      prints one line "RESULT {json}"

A job is ``{"task": "train" | "random", "env", "demos", "algo", "steps", "seed", "n_envs", "preset",
"eval_episodes", "eval_seed", "threads"}``; ``imitation_peers.peer_job`` builds them.

What it deliberately does not do: tune anything, or copy imitation's code. Every hyper-parameter comes from a
preset that names its source in imitation 1.0.1 (``PRESETS``; the ``tuned:<name>`` ones are read from the JSON
files imitation ships in ``imitation/scripts/config/tuned_hps``). Importing this module needs only NumPy; torch,
stable-baselines3 and imitation are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from typing import Any

import numpy as np

FORMAT = "rlkit-demos-v1"

# ------------------------------------------------------------------------------------------------- presets
# Each preset: n_envs, the PPO generator (``rollout`` = env steps per generator round, over all envs: imitation's
# scripts call it ``rl.batch_size`` and set n_steps = rollout // n_envs; None = PPO's own n_steps 2048 per env),
# the adversarial trainer's kwargs per algorithm, the reward net's normalisation and BC's kwargs. Class names are
# resolved inside the worker.
PRESETS: dict[str, dict[str, Any]] = {
    # ``python -m imitation.scripts.train_adversarial {gail,airl} with pendulum`` (and ``train_imitation bc with
    # pendulum``): the scripts' defaults, which imitation's named configs for the classic-control ids (pendulum,
    # cartpole, acrobot, mountain_car) leave unchanged. Sources: scripts/ingredients/rl.py config_hook (PPO,
    # rl.batch_size 2048, lr 3e-4, minibatch 64, 10 epochs, ent 0), ingredients/policy.py (FeedForward32Policy),
    # ingredients/environment.py (num_vec 8), ingredients/reward.py (BasicRewardNet, AIRL BasicShapedRewardNet,
    # input RunningNorm, output wrapped in NormalizedRewardNet(RunningNorm)), config/train_adversarial.py defaults
    # (demo_batch_size 1024, n_disc_updates_per_round 4, gen_replay_buffer_capacity = rl.batch_size) and
    # ingredients/bc.py (batch 32, l2 3e-5, Adam lr 4e-4; ent_weight: BC's default 1e-3).
    "scripts": {
        "n_envs": 8,
        "rollout": 2048,
        "policy": "imitation.policies.base.FeedForward32Policy",
        "policy_kwargs": {},
        "ppo": {"gail": {"learning_rate": 3e-4, "batch_size": 64, "n_epochs": 10, "ent_coef": 0.0}},
        "trainer": {
            "gail": {
                "demo_batch_size": 1024,
                "n_disc_updates_per_round": 4,
                "gen_replay_buffer_capacity": 2048,
            }
        },
        "reward_output_norm": True,
        "bc": {"batch_size": 32, "l2_weight": 3e-5, "lr": 4e-4, "ent_weight": 1e-3},
        "bc_policy": "imitation.policies.base.FeedForward32Policy",
        "bc_policy_kwargs": {},
    },
    # The examples in imitation's docs (docs/algorithms/gail.rst, airl.rst, bc.rst; seals/CartPole-v0, 8 envs):
    # SB3's MlpPolicy (64×64 tanh) with PPO's own n_steps (2048 per env), gen_replay_buffer_capacity 512, no output
    # normalisation of the reward; BC with every default of ``bc.BC`` (batch 32, Adam lr 1e-3, ent 1e-3, l2 0).
    "docs": {
        "n_envs": 8,
        "rollout": None,
        "policy": "MlpPolicy",
        "policy_kwargs": {},
        "ppo": {
            "gail": {"batch_size": 64, "ent_coef": 0.0, "learning_rate": 4e-4, "gamma": 0.95, "n_epochs": 5},
            "airl": {
                "batch_size": 64,
                "ent_coef": 0.0,
                "learning_rate": 5e-4,
                "gamma": 0.95,
                "clip_range": 0.1,
                "vf_coef": 0.1,
                "n_epochs": 5,
            },
        },
        "trainer": {
            "gail": {
                "demo_batch_size": 1024,
                "gen_replay_buffer_capacity": 512,
                "n_disc_updates_per_round": 8,
            },
            "airl": {
                "demo_batch_size": 2048,
                "gen_replay_buffer_capacity": 512,
                "n_disc_updates_per_round": 16,
            },
        },
        "reward_output_norm": False,
        "bc": {"batch_size": 32, "l2_weight": 0.0, "lr": 1e-3, "ent_weight": 1e-3},
        "bc_policy": "imitation.policies.base.FeedForward32Policy",
        "bc_policy_kwargs": {},
    },
}
TUNED = ("seals_ant", "seals_half_cheetah", "seals_hopper", "seals_swimmer", "seals_walker")


def _resolve(obj: Any) -> Any:
    """jsonpickle's ``{"py/type": "module.Name"}`` (how imitation's tuned_hps JSON store classes) → the class."""
    if isinstance(obj, dict):
        if set(obj) == {"py/type"}:
            module, _, name = obj["py/type"].rpartition(".")
            return getattr(importlib.import_module(module), name)
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    return obj


def _named(obj: Any) -> Any:
    """The inverse for reporting: classes by their dotted name, so the resolved settings go into JSON."""
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, dict):
        return {k: _named(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_named(v) for v in obj]
    return obj


def tuned_settings(name: str, algo: str) -> dict[str, Any]:
    """``imitation/scripts/config/tuned_hps/<algo>_<name>_best_hp_eval.json`` (imitation's benchmark configs,
    tuned on the seals MuJoCo envs) as a preset for one algorithm; n_envs stays the scripts' 8 (the files do not
    set it)."""
    from importlib import resources

    path = (
        resources.files("imitation") / "scripts" / "config" / "tuned_hps" / f"{algo}_{name}_best_hp_eval.json"
    )
    raw = json.loads(path.read_text())
    source = f"imitation/scripts/config/tuned_hps/{algo}_{name}_best_hp_eval.json"
    if algo == "bc":
        bc, policy = raw["bc"], raw["policy"]
        return {
            "source": source,
            "n_envs": None,
            "bc": {
                "batch_size": bc["batch_size"],
                "l2_weight": bc["l2_weight"],
                "lr": bc["optimizer_kwargs"]["lr"],
                "ent_weight": bc.get("ent_weight", 1e-3),
            },
            "bc_policy": _resolve(policy["policy_cls"]),
            "bc_policy_kwargs": _resolve(policy.get("policy_kwargs", {})),
        }
    rl, policy, reward = raw["rl"], raw["policy"], raw["reward"]
    kwargs = _resolve(policy.get("policy_kwargs", {}))
    arch = kwargs.get("net_arch")
    if isinstance(arch, list) and arch and isinstance(arch[0], dict):  # SB3 < 1.8 spelling; SB3 2 warns
        kwargs["net_arch"] = arch[0]
    return {
        "source": source,
        "n_envs": 8,
        "rollout": rl["batch_size"],
        "policy": _resolve(policy["policy_cls"]),
        "policy_kwargs": kwargs,
        "ppo": {algo: dict(rl["rl_kwargs"])},
        "trainer": {algo: dict(raw["algorithm_kwargs"])},
        "reward_net": _resolve(reward["net_cls"]),
        "reward_net_kwargs": _resolve(reward.get("net_kwargs", {})),
        "reward_output_norm": reward.get("normalize_output_layer") is not None,
    }


def settings_for(preset: str, algo: str) -> dict[str, Any]:
    """The resolved settings of ``preset`` for ``algo`` (bc / gail / airl); AIRL falls back on GAIL's entries
    where a preset does not distinguish them (the scripts' defaults do not)."""
    if preset.startswith("tuned:"):
        name = preset.split(":", 1)[1]
        if name not in TUNED:
            raise ValueError(f"preset {preset!r}: imitation has tuned settings for {', '.join(TUNED)}")
        return tuned_settings(name, algo)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {', '.join(PRESETS)} or tuned:<{'|'.join(TUNED)}>")
    p = PRESETS[preset]
    out = {"source": preset, "n_envs": None if algo == "bc" else p["n_envs"]}  # BC steps no env
    if algo == "bc":
        out |= {k: p[k] for k in ("bc", "bc_policy", "bc_policy_kwargs")}
        out["bc_policy"] = _class(p["bc_policy"])
        return out
    out |= {
        "rollout": p["rollout"],
        "policy": _class(p["policy"]),
        "policy_kwargs": dict(p["policy_kwargs"]),
        "ppo": {algo: dict(p["ppo"].get(algo, p["ppo"]["gail"]))},
        "trainer": {algo: dict(p["trainer"].get(algo, p["trainer"]["gail"]))},
        "reward_output_norm": p["reward_output_norm"],
    }
    return out


def _class(name: str) -> Any:
    if "." not in name:
        return name  # an SB3 policy alias such as "MlpPolicy"
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# ------------------------------------------------------------------------------------------------ converter
def read_rlkit_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an rlkit ``demos.npz`` (format ``rlkit-demos-v1``), checked for the layout the converter
    relies on: ``observations`` ``[N + E, ...]`` (T + 1 per episode), ``actions`` / ``rewards`` /
    ``terminations`` / ``truncations`` ``[N, ...]``, ``episode_lengths`` ``[E]``, and an episode end at the last
    step of every episode and nowhere else."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    fmt = str(arrays.get("__format__", ""))
    if fmt != FORMAT:
        raise ValueError(f"{path}: format {fmt!r}, expected {FORMAT!r}")
    nested = [k for k in arrays if k.startswith(("observations/", "actions/"))]
    if nested:
        raise ValueError(f"{path}: dict observations / actions ({nested[0]}) are not supported here")
    if "actions" not in arrays:
        raise ValueError(f"{path}: no actions stored (observation-only demos); BC / GAIL / AIRL need actions")
    lengths = arrays["episode_lengths"].astype(np.int64)
    n, e = int(lengths.sum()), len(lengths)
    if arrays["observations"].shape[0] != n + e:
        raise ValueError(f"{path}: {arrays['observations'].shape[0]} observations, expected {n} steps + {e}")
    for name in ("actions", "rewards", "terminations", "truncations"):
        if name in arrays and arrays[name].shape[0] != n:
            raise ValueError(f"{path}: {name} has {arrays[name].shape[0]} rows, expected {n}")
    ends = arrays["terminations"] | arrays["truncations"]
    last = np.zeros(n, bool)
    last[np.cumsum(lengths) - 1] = True
    if (ends != last).any():
        raise ValueError(f"{path}: an episode ends somewhere other than its last step (or not at all)")
    return arrays


def to_trajectories(arrays: dict[str, np.ndarray]) -> list:
    """rlkit demos → imitation ``TrajectoryWithRew`` (``Trajectory`` when no rewards are stored), one per episode.

    obs: the episode's T + 1 observations (the last is the real final observation, also of a truncated episode:
    ``rlkit demos collect`` stores Gymnasium's ``final_obs``); acts: T actions (Discrete: int ``[T]``); rews: T
    float32 rewards, vector rewards summed over their terms; infos: None; terminal: True — every stored episode
    is complete, and imitation marks an episode's end terminal whether it terminated or hit the time limit
    (``rollout.rollout`` does the same with TimeLimit; AIRL's shaping then uses potential 0 after it)."""
    from imitation.data import types

    lengths = arrays["episode_lengths"].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rewards = arrays.get("rewards")
    if rewards is not None:
        rewards = rewards.reshape(rewards.shape[0], -1).sum(axis=1).astype(np.float32)
    out = []
    for e, (start, t) in enumerate(zip(starts, lengths)):
        obs = arrays["observations"][start + e : start + e + t + 1]
        acts = arrays["actions"][start : start + t]
        if rewards is None:
            out.append(types.Trajectory(obs=obs, acts=acts, infos=None, terminal=True))
        else:
            rews = rewards[start : start + t]
            out.append(types.TrajectoryWithRew(obs=obs, acts=acts, infos=None, terminal=True, rews=rews))
    return out


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(env_id: str, act, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes, episode i reset with seed ``seed + i`` (the same seeds
    for every algorithm, the random policy and, through ``imitation_peers``, rlkit)."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, _ = env.step(act(obs))
            total += float(reward)
            done = term or trunc
        returns.append(total)
    env.close()
    return returns


def random_returns(job: dict) -> dict:
    import gymnasium as gym

    space = gym.make(job["env"]).action_space
    space.seed(job["eval_seed"])
    returns = evaluate(job["env"], lambda obs: space.sample(), job["eval_episodes"], job["eval_seed"])
    return {"returns": returns, "return_mean": float(np.mean(returns))}


# ------------------------------------------------------------------------------------------------ training
def train(job: dict, t_start: float) -> dict:
    import gymnasium as gym
    import torch
    from imitation.algorithms import bc
    from imitation.algorithms.adversarial.airl import AIRL
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data import rollout
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicRewardNet, BasicShapedRewardNet, NormalizedRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import set_random_seed

    import_s = time.perf_counter() - t_start
    t_setup = time.perf_counter()
    torch.set_num_threads(job["threads"])
    algo, seed = job["algo"], job["seed"]
    set_random_seed(seed)
    rng = np.random.default_rng(seed)
    s = settings_for(job["preset"], algo)
    n_envs = job.get("n_envs") or s["n_envs"]
    trajectories = to_trajectories(read_rlkit_npz(job["demos"]))
    probe = gym.make(job["env"])
    obs_shape, act_shape = probe.observation_space.shape, probe.action_space.shape
    if trajectories[0].obs.shape[1:] != obs_shape or trajectories[0].acts.shape[1:] != act_shape:
        raise ValueError(
            f"demos (obs {trajectories[0].obs.shape[1:]}, actions {trajectories[0].acts.shape[1:]}) do not fit "
            f"{job['env']} (obs {obs_shape}, actions {act_shape})"
        )
    log_dir = tempfile.mkdtemp(prefix="imitation-peer-")
    quiet = imit_logger.configure(log_dir, format_strs=[])  # no stdout / tensorboard: only the RESULT line
    report: dict[str, Any] = {"preset_source": s["source"], "n_envs": None if algo == "bc" else n_envs}
    if algo == "bc":
        b = s["bc"]
        policy = s["bc_policy"](
            observation_space=probe.observation_space,
            action_space=probe.action_space,
            lr_schedule=lambda _: 0.0,  # BC builds its own optimizer; SB3 needs a schedule to construct one
            **s["bc_policy_kwargs"],
        )
        trainer = bc.BC(
            observation_space=probe.observation_space,
            action_space=probe.action_space,
            rng=rng,
            policy=policy,
            demonstrations=rollout.flatten_trajectories(trajectories),
            batch_size=b["batch_size"],
            optimizer_kwargs={"lr": b["lr"]},
            ent_weight=b["ent_weight"],
            l2_weight=b["l2_weight"],
            device="cpu",
            custom_logger=quiet,
        )
        report["hyperparameters"] = _named({**s, "optimizer": "torch.optim.Adam"})
        setup_s = time.perf_counter() - t_setup
        t = time.perf_counter()
        trainer.train(n_batches=job["steps"], progress_bar=False, log_interval=10**9)
        train_s = time.perf_counter() - t
        model, counts = trainer.policy, {"grad_steps": job["steps"], "env_steps": 0}
    else:
        venv = make_vec_env(
            job["env"],
            rng=rng,
            n_envs=n_envs,
            post_wrappers=[lambda env, _: RolloutInfoWrapper(env)],  # imitation's own rollouts need it
        )
        ppo = dict(s["ppo"][algo])
        if s["rollout"] is not None:
            if s["rollout"] % n_envs:
                raise ValueError(f"n_envs {n_envs} must divide the preset's rollout size {s['rollout']}")
            ppo["n_steps"] = s["rollout"] // n_envs
        model = PPO(
            s["policy"],
            venv,
            seed=seed,
            device="cpu",
            policy_kwargs=dict(s["policy_kwargs"]),
            verbose=0,
            **ppo,
        )
        net_cls = s.get("reward_net") or (BasicShapedRewardNet if algo == "airl" else BasicRewardNet)
        net_kwargs = dict(s.get("reward_net_kwargs") or {"normalize_input_layer": RunningNorm})
        reward_net = net_cls(venv.observation_space, venv.action_space, **net_kwargs)
        if s["reward_output_norm"]:
            reward_net = NormalizedRewardNet(reward_net, RunningNorm)
        trainer_kwargs = dict(s["trainer"][algo])
        trainer = (AIRL if algo == "airl" else GAIL)(
            demonstrations=trajectories,
            venv=venv,
            gen_algo=model,
            reward_net=reward_net,
            log_dir=log_dir,
            custom_logger=quiet,
            # episodes that end early (CartPole, Hopper falling) are allowed, as imitation's cartpole / acrobot /
            # mountain_car named configs do; fixed-horizon envs (Pendulum) are unaffected
            allow_variable_horizon=True,
            **trainer_kwargs,
        )
        report["hyperparameters"] = _named(
            {
                "ppo": {**ppo, "policy": s["policy"], "policy_kwargs": s["policy_kwargs"]},
                "trainer": trainer_kwargs,
                "reward_net": net_cls,
                "reward_net_kwargs": net_kwargs,
                "reward_output_norm": s["reward_output_norm"],
                "gen_train_timesteps": trainer.gen_train_timesteps,
            }
        )
        setup_s = time.perf_counter() - t_setup
        t = time.perf_counter()
        trainer.train(job["steps"])  # rounds of gen_train_timesteps env steps: steps // that many
        train_s = time.perf_counter() - t
        counts = {"env_steps": int(model.num_timesteps), "grad_steps": None}
        venv.close()

    def act(obs):
        action, _ = model.predict(obs, deterministic=True)
        return action

    t = time.perf_counter()
    returns = evaluate(job["env"], act, job["eval_episodes"], job["eval_seed"])
    return {
        **report,
        **counts,
        "returns": returns,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "demo_episodes": len(trajectories),
        "demo_steps": int(sum(len(tr) for tr in trajectories)),
        "import_s": import_s,
        "setup_s": setup_s,
        "train_s": train_s,
        "eval_s": time.perf_counter() - t,
    }


def main(argv: list[str]) -> None:
    t_start = time.perf_counter()
    job = json.loads(argv[1])
    result = random_returns(job) if job["task"] == "random" else train(job, t_start)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
