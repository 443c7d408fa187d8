"""The only package that imports `kubernetes`; also the websocket port-forward client."""
