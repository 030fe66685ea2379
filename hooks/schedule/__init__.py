"""Deployment windows: RolloutSchedule and ClusterRolloutSchedule hooks (SPEC §1.4, §5.3, §6)."""
