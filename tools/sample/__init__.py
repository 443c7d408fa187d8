"""The sample services (the echo app, the load client) and their Kubernetes objects, shared by
the tests, the benchmarks and the demo."""

from pathlib import Path

ECHO_APP = Path(__file__).resolve().parent / "echo.py"
LOAD_CLIENT = Path(__file__).resolve().parent / "load.py"
