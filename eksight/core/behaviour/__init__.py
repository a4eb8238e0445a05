"""Behavioural baselines (UEBA): per-principal profiles, peer groups, scoring and explanations."""
