"""The in-cluster traffic agent: stdlib + websockets + h11 only, shipped as a zipapp."""
