"""The cluster network for the local process: names, forwarders, the proxy (docs/network.md)."""
