"""The agents shipped with rlkit, registered once (``rlkit.registry`` reads this module on first use).

Adding an algorithm: write its file (config, losses, update), then one ``register(AgentEntry(...))`` here.
"""

from __future__ import annotations

from agents import dqn, ppo, sac, td3
from agents.goals import base as goal_base
from agents.goals import crl, her
from agents.imitation import airl, bc, dagger, demo_reg, gail, rlpd, sqil
from agents.skills import csd, dads, diayn, lsd, metra, slim
from rlkit.registry import AgentEntry, register

register(
    AgentEntry(
        "sac",
        sac.SACConfig,
        sac.make_sac,
        sac.make_trainer,
        "Soft Actor-Critic (twin or ensemble critics, learned temperature, multi-critic reward terms)",
        validate=sac.validate,
        host_pieces=lambda config, spec: {},
    )
)
register(
    AgentEntry(
        "td3",
        td3.TD3Config,
        td3.make_td3,
        td3.make_trainer,
        "TD3 (twin critics, target policy smoothing, delayed actor updates)",
        validate=td3.validate,
        host_pieces=lambda config, spec: {},
    )
)
register(
    AgentEntry(
        "dqn",
        dqn.DQNConfig,
        dqn.make_dqn,
        dqn.make_trainer,
        "DQN (epsilon-greedy, target network, double-Q, dueling, Huber, n-step; one head per reward term)",
        validate=dqn.validate,
        host_pieces=dqn.host_pieces,
    )
)
register(
    AgentEntry(
        "ppo",
        ppo.PPOConfig,
        ppo.make_ppo,
        ppo.make_trainer,
        "PPO (GAE, clipped objective; discrete or continuous; multi-critic per-term advantages)",
        loop="on_policy",
        validate=ppo.validate,
        host_pieces=lambda config, spec: {},
    )
)
register(
    AgentEntry(
        "bc",
        bc.BCConfig,
        bc.make_bc,
        bc.make_trainer,
        "Behavioural cloning: a (tanh-)Gaussian or categorical policy fit by likelihood (+ entropy bonus) to demos",
        family="imitation",
        loop="offline",
        validate=bc.validate,
        inputs=("demos",),
        host_note="BC trains offline: from the CLI on a JAX env; on a Gymnasium env's demos from Python "
        "(bc.make_trainer(config, spec, demos=...), then rlkit.host_loop.evaluate_host); evaluate a BC agent "
        "on a Gymnasium env with rlkit eval --env",
    )
)
register(
    AgentEntry(
        "sqil",
        sqil.SQILConfig,
        sqil.make_sqil,
        sqil.make_trainer,
        "SQIL: SAC on half demonstrations (reward 1), half online replay (reward 0)",
        family="imitation",
        validate=sqil.validate,
        inputs=("demos",),
        host_pieces=sqil.host_pieces,
    )
)
for _name, _cls, _make, _trainer, _validate, _host, _what in (
    ("gail", gail.GAILConfig, gail.make_gail, gail.make_trainer, gail.validate, gail.host_pieces,
     "GAIL: PPO on a discriminator's reward -log(1 - D(s, a)) against demonstrations (absorbing states)"),
    ("gail-sac", gail.GAILSACConfig, gail.make_gail_sac, gail.make_trainer_sac, gail.validate_sac,
     gail.host_pieces_sac, "GAIL with SAC (off-policy, DAC-style): the discriminator's policy rows a recent window"),
    ("airl", airl.AIRLConfig, airl.make_airl, airl.make_trainer, airl.validate, airl.host_pieces,
     "AIRL: PPO on the shaped reward f = g(s) + gamma h(s') - h(s) of a discriminator f - log pi"),
    ("airl-sac", airl.AIRLSACConfig, airl.make_airl_sac, airl.make_trainer_sac, airl.validate_sac,
     airl.host_pieces_sac, "AIRL with SAC (off-policy): the discriminator's policy rows a recent window"),
):  # fmt: skip
    register(AgentEntry(_name, _cls, _make, _trainer, _what, family="imitation", validate=_validate,
                        inputs=("demos",), host_pieces=_host))  # fmt: skip
register(
    AgentEntry(
        "dagger",
        dagger.DAggerConfig,
        dagger.make_dagger,
        dagger.make_trainer,
        "DAgger: BC on every visited state labelled by an expert, rolled out by a beta-mixture of expert and learner",
        family="imitation",
        validate=dagger.validate,
        inputs=("expert",),
        host_pieces=dagger.host_pieces,
    )
)
register(
    AgentEntry(
        "rlpd",
        rlpd.RLPDConfig,
        rlpd.make_rlpd,
        rlpd.make_trainer,
        "RLPD: SAC (10 LayerNorm critics, min over 2, UTD 20) on half demonstrations, half online replay",
        family="imitation",
        validate=rlpd.validate,
        inputs=("demos",),
        host_pieces=rlpd.host_pieces,
    )
)
register(
    AgentEntry(
        "demo-reg",
        demo_reg.DemoRegConfig,
        demo_reg.make_demo_reg,
        demo_reg.make_trainer,
        "Demonstration-regularized SAC: a BC prior fit by likelihood, KL(pi || pi_BC) in place of the entropy",
        family="imitation",
        validate=demo_reg.validate,
        inputs=("demos",),
        host_pieces=demo_reg.host_pieces,
    )
)
register(
    AgentEntry(
        "diayn",
        diayn.DIAYNConfig,
        diayn.make_diayn,
        diayn.make_trainer,
        "DIAYN: SAC on skills z ~ categorical(K) held per episode, rewarded by a discriminator log q(z|s') - log p(z)",
        family="skills",
        validate=diayn.validate,
        host_pieces=diayn.host_pieces,
        condition=lambda config: (diayn.prior(config), config.resample_every),
    )
)

for _module, _config, _description in (
    (lsd, lsd.LSDConfig, "LSD: SAC on skills z ~ N(0, I), rewarded (phi(s') - phi(s))^T z with phi 1-Lipschitz (spectral norm)"),
    (metra, metra.METRAConfig, "METRA: SAC on unit-sphere skills, rewarded (phi(s') - phi(s))^T z under a temporal-distance dual constraint"),
    (csd, csd.CSDConfig, "CSD: METRA's dual constraint under a learned controllability distance of s' - s given s"),
    (dads, dads.DADSConfig, "DADS: SAC on skills z ~ U[-1, 1]^d, rewarded by how much better z predicts s' - s (skill dynamics) than prior skills"),
):  # fmt: skip
    _s = _module.skills
    register(
        AgentEntry(
            _s.name,
            _config,
            _s.make_agent,
            _s.make_trainer,
            _description,
            family="skills",
            validate=_s.validate,
            host_pieces=_s.host_pieces,
            condition=_s.condition,
        )
    )
register(
    AgentEntry(
        "slim",
        slim.SLIMConfig,
        slim.make_slim,
        slim.make_trainer,
        "SLIM: PPO with one critic per reward term on the env's terms plus METRA's skill reward, per-term normalized",
        family="skills",
        loop="on_policy",
        validate=slim.validate,
        host_pieces=None,
        host_note="SLIM runs on JAX envs (its PPO rollouts carry z as a transition extra on device)",
        condition=lambda config: (slim.skills(config), config.resample_every),
    )
)

_GOALS_NOTE = "goal-conditioned agents run on JAX envs: goals are drawn by the env's sample_free and relabelled on device"
for _name, _cls, _make, _mod, _desc in (
    ("crl", crl.CRLConfig, crl.make_crl, crl, "Contrastive RL: InfoNCE critic phi(s,a)^T psi(g) on hindsight goals "
     "(gamma^dt future states), actor maximizing it; a goal per episode"),
    ("sgcrl", crl.SGCRLConfig, crl.make_sgcrl, crl, "Single-goal contrastive RL: CRL collecting toward one fixed "
     "goal, learning on hindsight goals, no entropy bonus"),
    ("her", her.HERConfig, her.make_her, her, "SAC + hindsight experience replay: sparse goal reward, 80% of goals "
     "relabelled with future achieved goals"),
):  # fmt: skip
    register(
        AgentEntry(
            _name,
            _cls,
            _make,
            _mod.make_trainer,
            _desc,
            family="goals",
            score="eval_success_any",
            validate=_mod.validate,
            host_note=_GOALS_NOTE,
            wrap_env=goal_base.goal_env,
        )
    )
