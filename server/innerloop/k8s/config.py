"""Kubeconfig loading: path or $KUBECONFIG or ~/.kube/config, and the context to use.

Every problem here is the user's file, so each is a ConfigError naming the file and the fix.
"""

from __future__ import annotations

import os

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.config.kube_config import KubeConfigMerger

from innerloop.core.advice import Fix, advise
from innerloop.core.errors import ConfigError


def one_line(what: object) -> str:
    """Any message on one line (loaders and the client put newlines in theirs)."""
    return " ".join(str(what).split()) or type(what).__name__


def load_kubeconfig(kubeconfig: str | None, context: str | None) -> tuple[Configuration, str]:
    """The client configuration of the context, and the context's namespace. Blocking."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    shown = path if kubeconfig or os.environ.get("KUBECONFIG") else "~/.kube/config"
    first = os.path.expanduser(path.split(os.pathsep)[0])
    if not os.path.exists(first):
        raise ConfigError(f"no kubeconfig at {shown}", advice=advise(Fix.KUBECONFIG))
    try:
        merged = KubeConfigMerger(path).config  # type: ignore[no-untyped-call]
        raw = merged.value if merged is not None else {}
        contexts = [c.value for c in raw.get("contexts") or []]  # ConfigNodes of dicts
        contexts = [c for c in contexts if isinstance(c, dict) and "name" in c]
        current = raw.get("current-context") or None
    except Exception as exc:  # any unreadable kubeconfig (YAML, shape) is a config error
        raise ConfigError(f"cannot read kubeconfig {shown}: {one_line(exc)}") from exc
    names = [str(c["name"]) for c in contexts]
    if context is not None and context not in names:
        raise ConfigError(
            f"kubeconfig {shown} has no context {context!r}; its contexts "
            f"are {', '.join(names) or 'none'}"
        )
    if context is None and current is None:
        raise ConfigError(
            f"kubeconfig {shown} has no current context (its contexts: "
            f"{', '.join(names) or 'none'})", advice=advise(Fix.CONTEXT))
    if context is None and current not in names:
        raise ConfigError(
            f"kubeconfig {shown}: its current context {current!r} is not among its contexts "
            f"({', '.join(names) or 'none'})", advice=advise(Fix.CONTEXT))
    context = context or current
    chosen = next(c for c in contexts if c["name"] == context)
    cfg = Configuration()
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except Exception as exc:  # the loader raises many kinds; all mean "fix the kubeconfig"
        raise ConfigError(
            f"cannot load kubeconfig {shown} (context {chosen['name']!r}): {one_line(exc)}"
        ) from exc
    cfg.retries = 1  # one retry: a pooled connection may have gone stale while idle
    namespace = (chosen.get("context") or {}).get("namespace") or "default"
    return cfg, namespace
