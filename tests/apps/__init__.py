"""Sample services for e2e tests and the demo: an echo HTTP server and a load client."""
