"""Intercepts: the manager shared by the CLI, the language server and the debug adapter,
the runner of one intercept, its tunnels, and this machine's record of held intercepts."""
