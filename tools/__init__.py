"""Developer tools for innerloop (not shipped in the wheel)."""
