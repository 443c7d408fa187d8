"""Kubeconfig loading: path or $KUBECONFIG or ~/.kube/config, and the context to use.

Every problem here is the user's file, so each is a ConfigError naming the file and the fix.
A single file is parsed here and a simple context read by `k8s.kubeconfig`; the `kubernetes`
loader (imported only then) reads every other kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from innerloop.core.advice import Fix, advise
from innerloop.core.errors import ConfigError
from innerloop.k8s.kubeconfig import ClientConfig, simple_config

if TYPE_CHECKING:
    from kubernetes.client import Configuration

Settings: TypeAlias = "ClientConfig | Configuration"
"""What a kubeconfig context loads to: ours for the simple kinds, the client's for the rest."""
DEFAULT_LOCATION = "~/.kube/config"


def one_line(what: object) -> str:
    """Any message on one line (loaders and the client put newlines in theirs)."""
    return " ".join(str(what).split()) or type(what).__name__


@dataclass(frozen=True)
class KubeContext:
    name: str
    namespace: str
    """The context's namespace, "default" when it names none (as kubectl)."""
    cluster: str


def _parse(path: str) -> dict[str, Any]:
    """The kubeconfig as plain data: one file parsed here (or as it was parsed last, when it
    has not changed: `config_cache`), a KUBECONFIG list merged by the `kubernetes` loader
    (first file wins, as kubectl)."""
    if os.pathsep not in path:
        from innerloop.k8s import config_cache

        path = os.path.expanduser(path)
        stamp, raw = config_cache.cached(path)
        if isinstance(raw, dict):
            return raw
        import yaml  # type: ignore[import-untyped]

        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if raw is not None and not isinstance(raw, dict):
            raise ValueError("not a kubeconfig (a YAML mapping)")
        config_cache.keep(path, stamp, raw or {})
        return raw or {}
    from kubernetes.config.kube_config import KubeConfigMerger

    merged = KubeConfigMerger(path).config  # type: ignore[no-untyped-call]
    raw = merged.value if merged is not None else {}
    raw["contexts"] = [c.value for c in raw.get("contexts") or []]  # ConfigNodes of dicts
    return dict(raw)


def _read(kubeconfig: str | None) -> tuple[str, str, dict[str, Any], list[dict[str, Any]],
                                           str | None]:
    """The path, how to show it, the parsed file, its contexts and its current context.
    Blocking."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_LOCATION
    shown = path if kubeconfig or os.environ.get("KUBECONFIG") else DEFAULT_LOCATION
    first = os.path.expanduser(path.split(os.pathsep)[0])
    if not os.path.exists(first):
        raise ConfigError(f"no kubeconfig at {shown}", advice=advise(Fix.KUBECONFIG))
    try:
        raw = _parse(path)
        contexts = [c for c in raw.get("contexts") or [] if isinstance(c, dict) and "name" in c]
        current = raw.get("current-context") or None
    except Exception as exc:  # any unreadable kubeconfig (YAML, shape) is a config error
        raise ConfigError(f"cannot read kubeconfig {shown}: {one_line(exc)}") from exc
    return path, shown, raw, contexts, current


def _namespace(context: dict[str, Any]) -> str:
    return str((context.get("context") or {}).get("namespace") or "default")


def kube_contexts(kubeconfig: str | None) -> tuple[list[KubeContext], str | None]:
    """The kubeconfig's contexts and its current context's name. Blocking."""
    _path, _shown, _raw, contexts, current = _read(kubeconfig)
    return [KubeContext(str(c["name"]), _namespace(c),
                        str((c.get("context") or {}).get("cluster") or "")) for c in contexts
            ], current


def load_kubeconfig(kubeconfig: str | None, context: str | None) -> tuple[Settings, str]:
    """The client configuration of the context, and the context's namespace. Blocking."""
    path, shown, raw, contexts, current = _read(kubeconfig)
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
    context = str(context or current)
    chosen = next(c for c in contexts if c["name"] == context)
    try:
        one_file = os.pathsep not in path
        simple = simple_config(raw, context, os.path.expanduser(path)) if one_file else None
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load kubeconfig {shown} (context {chosen['name']!r}): {one_line(exc)}"
        ) from exc
    if simple is not None:
        return simple, _namespace(chosen)
    from kubernetes import config as kube_config
    from kubernetes.client import Configuration

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
    return cfg, _namespace(chosen)
