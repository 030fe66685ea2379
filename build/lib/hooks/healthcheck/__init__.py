"""The HealthCheck decorator (SPEC §5.2): reset on new deployments, health from a Kustomization."""
