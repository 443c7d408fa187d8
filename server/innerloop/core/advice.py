"""What to do about an error, said the way the user can do it where they are.

One catalogue for every surface: an error carries an `Advice` (which knob to turn, with its
values) and is rendered for the surface that shows it. The CLI (and `innerloop dap`, whose users
configure it with the same flags) names flags and commands; the editor (the language server and
the debug adapter it hosts) names the `innerloop.*` settings, launch-configuration keys and
palette commands, since `innerloop` is not on PATH inside VS Code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Surface(enum.Enum):
    CLI = "cli"
    EDITOR = "editor"


class Fix(enum.Enum):
    KUBECONFIG = "kubeconfig"
    CONTEXT = "context"
    NAMESPACE = "namespace"
    FIND_SERVICE = "find-service"
    SERVICE_PORT = "service-port"
    SERVICE_PORT_NAME = "service-port-name"
    AGENT_IMAGE = "agent-image"
    PYTHON = "python"
    HOLDER_LEAVES = "holder-leaves"


_CATALOGUE: Mapping[Fix, Mapping[Surface, str]] = {
    Fix.KUBECONFIG: {
        Surface.CLI: "pass --kubeconfig or set KUBECONFIG",
        Surface.EDITOR: 'set the "innerloop.kubeconfig" setting (or KUBECONFIG)',
    },
    Fix.CONTEXT: {
        Surface.CLI: "pass --context",
        Surface.EDITOR: 'set the "innerloop.context" setting (or "context" in the launch '
                        "configuration)",
    },
    Fix.NAMESPACE: {
        Surface.CLI: "pick one with -n",
        Surface.EDITOR: 'set "namespace" in the launch configuration or the '
                        '"innerloop.namespace" setting',
    },
    Fix.FIND_SERVICE: {
        Surface.CLI: "`innerloop list` shows what there is",
        Surface.EDITOR: 'check "service" and "namespace" in the launch configuration; '
                        '"Innerloop: Intercept Service…" lists the Services of a namespace',
    },
    Fix.SERVICE_PORT: {
        Surface.CLI: "pick one with --port",
        Surface.EDITOR: 'set "servicePort" in the launch configuration',
    },
    Fix.SERVICE_PORT_NAME: {
        Surface.CLI: "name the service port, e.g. --port 8080:NAME",
        Surface.EDITOR: 'set "servicePort" to the port\'s name in the launch configuration',
    },
    Fix.AGENT_IMAGE: {
        Surface.CLI: "see --agent-image",
        Surface.EDITOR: 'see the "innerloop.agentImage" setting (or "agentImage" in the launch '
                        "configuration)",
    },
    Fix.PYTHON: {
        Surface.CLI: "run the program with another interpreter",
        Surface.EDITOR: 'set "python" in the launch configuration, or select the workspace\'s '
                        'interpreter (Python extension, "python.defaultInterpreterPath", or a '
                        "workspace .venv)",
    },
    Fix.HOLDER_LEAVES: {
        Surface.CLI: "ask them to leave, or pass --force",
        # The editor has no force: it never ends someone else's intercept.
        Surface.EDITOR: "ask them to leave first",
    },
}


@dataclass(frozen=True)
class Advice:
    """A `Fix` with the values its sentence names (e.g. the service of `UNINSTALL`)."""

    fix: Fix
    values: Mapping[str, str] = field(default_factory=dict)

    def render(self, surface: Surface) -> str:
        return _CATALOGUE[self.fix][surface].format(**self.values)


def advise(fix: Fix, **values: str) -> Advice:
    return Advice(fix, values)


def with_advice(fact: str, advice: Advice | None, surface: Surface) -> str:
    """`fact; what to do` (the fact alone without advice)."""
    return fact if advice is None else f"{fact}; {advice.render(surface)}"
