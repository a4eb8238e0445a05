"""Behavioural baselines (UEBA): per-principal profiles, peer groups, scoring and explanations."""

ANOMALY_RULE_ID = "UEBA-1"  # the rule id of every anomaly finding; here so config validation needs no numpy
