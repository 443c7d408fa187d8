"""The advice catalogue: every fix is said for every surface, and the editor's sentences never
send the user to a command line (innerloop is not on PATH inside VS Code)."""

from __future__ import annotations

import re

import pytest
from innerloop.core.advice import Fix, Surface, advise
from innerloop.core.errors import UserError


@pytest.mark.parametrize("fix", list(Fix))
def test_every_fix_renders_for_every_surface(fix: Fix) -> None:
    for surface in Surface:
        assert advise(fix).render(surface).strip()


@pytest.mark.parametrize("fix", list(Fix))
def test_the_editor_names_no_flag_nor_cli_command(fix: Fix) -> None:
    line = advise(fix).render(Surface.EDITOR)
    assert not re.search(r"(^|\s)--?[a-z]", line), line
    assert "`innerloop " not in line, line


def test_an_uninstall_refused_for_a_holder_says_force_only_on_the_cli() -> None:
    err = UserError("orders.shop is intercepted by ann@laptop: uninstalling would end their "
                    "intercept", advice=advise(Fix.HOLDER_LEAVES))
    assert err.user_line(Surface.CLI).endswith("; ask them to leave, or pass --force")
    assert err.user_line(Surface.EDITOR).endswith("; ask them to leave first")
