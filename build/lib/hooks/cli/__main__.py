"""`python -m hooks.cli`: the same as `kubectl kuberik`."""

from hooks.cli.main import main

main()
