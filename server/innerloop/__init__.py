"""innerloop: reroute a Kubernetes Service's live traffic to a local process under debugpy."""

__version__ = "0.1.0"
