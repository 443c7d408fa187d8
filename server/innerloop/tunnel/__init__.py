"""asyncio shell around the core multiplexer; one tunnel per agent replica."""
