"""A real single-node Kubernetes cluster on this machine, offline, for tests and the demo.

Run as ``python -m tools.testbed build|images|up|down|status|env|netns``; see docs/testbed.md.
"""
