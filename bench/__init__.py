"""Benchmarks (docs/benchmarks.md): loopback tunnel numbers and the real system on the testbed."""
