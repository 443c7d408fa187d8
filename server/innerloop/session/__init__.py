"""The intercept manager shared by the CLI, the language server and the debug adapter."""
