"""The HealthCheck decorator: reset on new deployments, health from a Kustomization or Prometheus.

What it does: docs/spec/v1alpha1/healthcheck.md.
"""
