"""Language server features; each module exposes `setup(server, deps)`."""
