"""What the docs promise about the code, checked against the code (issue 7: the kube-proxy wait
was documented as 0.5 s while the code waited 2 s; editors.md said a broken launch configuration
opens launch.json while the provider returned `undefined`, which VS Code takes as a cancel)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import innerloop

PACKAGE = Path(innerloop.__file__).parent
REPO = PACKAGE.parents[1]


def kube_proxy_bounds() -> set[float]:
    """The `…SETTLE` constants of innerloop.intercepts: the longest wait for kube-proxy."""
    found = set()
    for path in (PACKAGE / "intercepts").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.endswith("SETTLE")
                    and isinstance(node.value, ast.Constant)):
                found.add(float(node.value.value))
    return found


def test_architecture_states_the_kube_proxy_bound_the_code_uses() -> None:
    [bound] = kube_proxy_bounds()
    text = " ".join((REPO / "docs" / "architecture.md").read_text().split())
    [said] = re.findall(r"At most (\d+(?:\.\d+)?) s, and a fixed \1 s where the agents cannot be "
                        r"probed", text)
    assert float(said) == bound


def resolve_debug_configuration() -> str:
    """The body of the extension's `resolveDebugConfiguration` (extension/src/debug.ts)."""
    source = (REPO / "extension" / "src" / "debug.ts").read_text()
    start = source.index("  async resolveDebugConfiguration(")
    return source[start:source.index("\n  }\n", start)]


def test_a_broken_launch_configuration_opens_launch_json_as_editors_md_says() -> None:
    """VS Code opens launch.json when the provider returns null; undefined only cancels."""
    editors = " ".join((REPO / "docs" / "editors.md").read_text().split())
    assert "a broken configuration gives one message and opens launch.json" in editors
    body = resolve_debug_configuration()
    refusal = body[body.index("validate(resolved)"):]
    refusal = refusal[:refusal.index("\n    }")]  # the end of the `if (problems…)` block
    assert "showErrorMessage" in refusal and refusal.rstrip().endswith("return null;"), refusal
    assert "return undefined" not in body
