# The two commands of the README:
#   make run    create the environment, install rlkit, run the main job (writes runs/default/)
#   make test   the whole test suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint lock bench-envs bench-buffers bench-peers bench-dqn bench-host bench-composition bench-imitation bench-imitation-mujoco reproduce reproduce-composition reproduce-replay reproduce-imitation reproduce-imitation-mujoco reproduce-skills reproduce-slim reproduce-crl bench-skills bench-goals multi-critic docs bench-accelerator bench-mujoco-bridge clean

# constraints.txt pins every dependency to the versions the suite was last run with (regenerate it with
# `make lock` after changing dependencies), so a fresh machine and CI install exactly what was tested.
$(PY): pyproject.toml constraints.txt scripts/find-python
	@set -e; py=$$(scripts/find-python); echo "using $$py ($$($$py --version))"; \
	  $$py -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"; \
	  touch $(PY)

run: $(PY)
	$(PY) -m experiments.train

test: $(PY)
	$(PY) -m pytest -q -n 2 tests

bench-accelerator: $(PY)
	$(PY) -m experiments.benchmarks.accelerator

# needs Gymnasium's MuJoCo envs for the host side: installs the mujoco extra into the venv first
bench-mujoco-bridge: $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mujoco]"
	$(PY) -m experiments.benchmarks.mujoco_bridge

docs: $(PY)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint: $(PY)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

lock: $(PY)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

bench-envs: $(PY)
	$(PY) -m experiments.benchmarks.env_throughput

bench-buffers: $(PY)
	$(PY) -m experiments.benchmarks.buffers

bench-peers: $(PY)
	$(PY) -m experiments.benchmarks.peers

bench-dqn: $(PY)
	$(PY) -m experiments.benchmarks.peers --dqn

# needs Gymnasium's MuJoCo envs: installs the mujoco extra into the venv first
bench-host: $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mujoco]"
	$(PY) -m experiments.benchmarks.host_runs

reproduce: $(PY)
	$(PY) -m experiments.reproduce.foundation

reproduce-composition: $(PY)
	$(PY) -m experiments.reproduce.composition

reproduce-replay: $(PY)
	$(PY) -m experiments.reproduce.replay_sampling

bench-composition: $(PY)
	$(PY) -m experiments.benchmarks.composition

reproduce-imitation: $(PY)
	$(PY) -m experiments.reproduce.imitation

# the MuJoCo envs through the host loop: installs the mujoco extra into the venv first
reproduce-imitation-mujoco: $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mujoco]"
	$(PY) -m experiments.reproduce.imitation --envs InvertedPendulum-v5,InvertedDoublePendulum-v5

# imitation (PyTorch + SB3) in its own venv, built by the script; demos from `rlkit demos collect` (DEMOS=dir)
bench-imitation: $(PY)
	$(PY) -m experiments.benchmarks.imitation_peers --env Pendulum-v1 --demos $(DEMOS) --steps 204800 \
	  --bc-steps 20000 --seeds 3 --out experiments/benchmarks/results/imitation_pendulum.json

# the same through rlkit's Gymnasium host loop on a MuJoCo env (DEMOS: InvertedPendulum demonstrations)
bench-imitation-mujoco: $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mujoco]"
	$(PY) -m experiments.benchmarks.imitation_peers --env InvertedPendulum-v4 --demos $(DEMOS) --steps 204800 \
	  --bc-steps 20000 --algos bc,gail --seeds 2 --out experiments/benchmarks/results/imitation_inverted_pendulum.json

reproduce-skills: $(PY)
	$(PY) -m experiments.reproduce.skills

reproduce-slim: $(PY)
	$(PY) -m experiments.reproduce.slim

reproduce-crl: $(PY)
	$(PY) -m experiments.reproduce.crl

bench-skills: $(PY)
	$(PY) -m experiments.benchmarks.skills

bench-goals: $(PY)
	$(PY) -m experiments.benchmarks.goals

multi-critic: $(PY)
	$(PY) -m experiments.multi_critic_push2d

clean:
	rm -rf $(VENV) runs
