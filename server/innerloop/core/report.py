"""How a long operation tells the user what it is doing, whatever the surface."""

from __future__ import annotations

from collections.abc import Callable

Report = Callable[[str], None]
"""Shows one line to the user: a CLI line, an LSP $/progress message, a Debug Console line."""
