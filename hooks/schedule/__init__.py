"""Deployment windows: RolloutSchedule and ClusterRolloutSchedule hooks.

Reference: docs/spec/v1alpha1/rolloutschedule.md.
"""
