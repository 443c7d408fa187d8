"""Debug adapter: a proxy in front of debugpy's own adapter."""
