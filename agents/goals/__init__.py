"""Goal-conditioned agents: contrastive RL (CRL), single-goal CRL and SAC + hindsight experience replay (HER)."""
