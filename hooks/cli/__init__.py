"""`kubectl kuberik`: operate Rollouts from a terminal, on the same decision code as the hooks.

See docs/cli.md for every command and its raw kubectl equivalent.
"""
