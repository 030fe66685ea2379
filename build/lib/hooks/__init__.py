"""Metacontroller hooks that roll Flux releases out: Rollouts, HealthChecks, schedules."""

#: The release, shared by pyproject.toml, the image tag in metacontroller/ and the docs
#: (tests/test_release.py checks that they agree).
__version__ = "0.2.0"
