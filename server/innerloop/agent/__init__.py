"""The in-cluster traffic agent: stdlib + h11 only, shipped as a zipapp."""
