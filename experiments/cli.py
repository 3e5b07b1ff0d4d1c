"""The ``rlkit`` command.

rlkit train --agent sac --env pendulum …      train (``rlkit train --agent X --help``: every field documented)
rlkit eval runs/default/agent.rlkit --env pendulum --episodes 20 --video eval.gif
rlkit plot runs/sac runs/td3 --metric eval_return --out curves.png
rlkit envs                                    the registered env ids
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

COMMANDS = ("train", "eval", "plot", "envs")


@dataclass(frozen=True)
class EvalArgs:
    agent_file: tyro.conf.Positional[str]
    """an exported agent (``agent.rlkit`` in a run directory)"""
    env: str = ""
    """env to evaluate on (default: the env it was trained on); any registered id or gymnasium:<id>"""
    episodes: int = 10
    """complete episodes to average"""
    mode: str = "deterministic"
    """deterministic | explore"""
    seed: int = 0
    """evaluation seed"""
    video: str = ""
    """write one episode as an animated GIF here (JAX-native envs)"""


@dataclass(frozen=True)
class PlotArgs:
    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """run directories (one curve each, over every */metrics.jsonl inside: seeds and swept runs)"""
    metric: str = "episode_return"
    """metric to plot (e.g. eval_return, loss/critic)"""
    out: str = "learning_curves.png"
    """PNG to write"""
    title: str = ""
    """figure title"""


def evaluate(args: EvalArgs) -> dict:
    import jax

    import envs
    from rlkit.export import load_agent

    if args.episodes < 1 or args.mode not in ("deterministic", "explore"):
        raise ValueError("episodes must be >= 1 and mode deterministic | explore")
    _, trained_state = load_agent(args.agent_file)
    env_id = (
        args.env
        or __import__("json").loads(
            __import__("flax").serialization.msgpack_restore(Path(args.agent_file).read_bytes())["header"]
        )["spec"]["id"]
    )
    if env_id.startswith(envs.registry.GYMNASIUM_PREFIX) or env_id not in envs.registered_ids():
        from rlkit.host_loop import evaluate_host

        gym_env = envs.make(env_id if env_id.startswith("gymnasium:") else f"gymnasium:{env_id}")
        with gym_env:
            agent, state = load_agent(args.agent_file, gym_env.spec)
            result = evaluate_host(
                agent, state, gym_env, episodes=args.episodes, seed=args.seed, mode=args.mode
            )
    else:
        from rlkit.evaluation import evaluate_policy
        from rlkit.rollout import wrap_for_rollout

        env = envs.make(env_id)
        agent, state = load_agent(args.agent_file, env.spec)
        out = jax.jit(
            lambda s, k: evaluate_policy(
                wrap_for_rollout(env), agent, s, k, num_episodes=args.episodes, mode=args.mode
            )
        )(state, jax.random.key(args.seed))
        result = {k: float(v) for k, v in out.items()}
        if args.video:
            result["video"] = record_video(env, agent, state, args.video, seed=args.seed, mode=args.mode)
    print(
        f"{Path(args.agent_file)} on {env_id}: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    )
    return result


def record_video(
    env, agent, state, path: str, *, seed: int = 0, mode: str = "deterministic", fps: int = 30
) -> str:
    """One episode rendered on the device (``env.render`` vmapped over the scanned states), saved as a GIF."""
    import jax
    import numpy as np
    from PIL import Image

    horizon = env.spec.max_episode_steps or 200

    @jax.jit
    def rollout(key):
        obs, s = env.reset(key)

        def step(carry, k):
            obs, s = carry
            a = agent.act(state, obs, k, mode)
            obs, s2, *_ = env.step(k, s, a)
            return (obs, s2), s

        _, states = jax.lax.scan(step, (obs, s), jax.random.split(key, horizon))
        return jax.vmap(env.render)(states)

    frames = np.asarray(rollout(jax.random.key(seed)))
    images = [Image.fromarray(f) for f in frames[:: max(1, len(frames) // 150)]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def plot(args: PlotArgs) -> str:
    from rlkit.plots import load_curves, plot_learning_curves

    curves = {}
    for run_dir in args.run_dirs:
        files = sorted(Path(run_dir).glob("**/metrics.jsonl"))
        if not files:
            raise ValueError(f"no metrics.jsonl under {run_dir}")
        curves[Path(run_dir).name] = load_curves(files, args.metric)
    out = plot_learning_curves(curves, args.out, title=args.title, ylabel=args.metric.replace("_", " "))
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__)
        raise SystemExit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    command, rest = argv[0], argv[1:]
    if command == "envs":
        import envs

        print(envs.describe())
        return
    if command == "train":
        from experiments.train import main as train_main

        train_main(rest)
        return
    try:
        if command == "eval":
            evaluate(tyro.cli(EvalArgs, args=rest, prog="rlkit eval"))
        else:
            plot(tyro.cli(PlotArgs, args=rest, prog="rlkit plot"))
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"rlkit {command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
