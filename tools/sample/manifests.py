"""Kubernetes objects for the sample services, as plain dicts (apply with `kubectl apply -f -`).

The app code travels in ConfigMaps, so the stock `localhost/python3:1` image runs it:

- echo: Deployment (2 replicas) or StatefulSet, Service `echo` port 80 (`http`) -> 8080,
  SECRET_VALUE from a Secret (secretKeyRef), CONFIG_VALUE from a ConfigMap (envFrom),
  readiness probe on GET /ready.
- client: a pod holding tools/sample/load.py, either idle (for `kubectl exec`) or running
  one load run whose JSON lines are then read with `kubectl logs`.
"""

from __future__ import annotations

from typing import Any

from tools.sample import ECHO_APP, LOAD_CLIENT
from tools.testbed import config

Manifest = dict[str, Any]

PYTHON_IMAGE = config.PYTHON_IMAGE
"""The stock image the testbed builds: it runs the sample apps and the innerloop agent."""
ECHO_PORT = 8080
SECRET_VALUE = "s3cr3t-from-secret"
CONFIG_VALUE = "from-configmap"


def _meta(name: str, labels: dict[str, str] | None = None) -> Manifest:
    return {"name": name, **({"labels": labels} if labels else {})}


def configmap(name: str, data: dict[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name), "data": data}


def echo_code(name: str = "echo-code") -> Manifest:
    """The echo app's source, mounted at /app."""
    return configmap(name, {"app.py": ECHO_APP.read_text()})


def echo_config(name: str = "echo-config", value: str = CONFIG_VALUE) -> Manifest:
    return configmap(name, {"CONFIG_VALUE": value})


def echo_secret(name: str = "echo-secret", value: str = SECRET_VALUE) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name),
        "type": "Opaque",
        "stringData": {"secret": value},
    }


def echo_pod_template(app: str = "echo") -> Manifest:
    """Pod template of the echo app: code from a ConfigMap, env from a Secret and a ConfigMap."""
    container = {
        "name": "echo",
        "image": PYTHON_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["python3", "-u", "/app/app.py"],
        "ports": [{"name": "http", "containerPort": ECHO_PORT}],
        "env": [
            {"name": "PORT", "value": str(ECHO_PORT)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "SECRET_VALUE",
                "valueFrom": {"secretKeyRef": {"name": "echo-secret", "key": "secret"}},
            },
        ],
        "envFrom": [{"configMapRef": {"name": "echo-config"}}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
        "volumeMounts": [{"name": "code", "mountPath": "/app", "readOnly": True}],
    }
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 15,
            "containers": [container],
            "volumes": [{"name": "code", "configMap": {"name": "echo-code"}}],
        },
    }


def echo_deployment(name: str = "echo", replicas: int = 2) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, {"app": name}),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": echo_pod_template(name),
        },
    }


def echo_statefulset(name: str = "echo-sts", replicas: int = 2) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, {"app": name}),
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": echo_pod_template(name),
        },
    }


def echo_service(
    name: str = "echo", target_port: int | str = ECHO_PORT, app: str | None = None
) -> Manifest:
    """Service port 80 named `http`; target_port is 8080 or the container port's name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, {"app": app or name}),
        "spec": {
            "selector": {"app": app or name},
            "ports": [{"name": "http", "port": 80, "targetPort": target_port, "protocol": "TCP"}],
        },
    }


def echo_objects(name: str = "echo", replicas: int = 2) -> list[Manifest]:
    """Everything for the 2-replica Deployment sample."""
    return [
        echo_code(),
        echo_config(),
        echo_secret(),
        echo_deployment(name, replicas),
        echo_service(name),
    ]


def echo_statefulset_objects(name: str = "echo-sts", replicas: int = 2) -> list[Manifest]:
    """The StatefulSet variant, whose Service uses the named targetPort `http`."""
    return [
        echo_code(),
        echo_config(),
        echo_secret(),
        echo_statefulset(name, replicas),
        echo_service(name, target_port="http"),
    ]


def load_code(name: str = "load-code") -> Manifest:
    return configmap(name, {"load.py": LOAD_CLIENT.read_text()})


_IDLE = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()"


def client_pod(name: str = "client", load_args: list[str] | None = None) -> Manifest:
    """A pod with load.py at /client/load.py.

    Without ``load_args`` it idles (use `kubectl exec NAME -- python3 /client/load.py URL ...`);
    with them it runs one load run and exits, its JSON lines readable with `kubectl logs`.
    """
    command = (
        ["python3", "-u", "/client/load.py", *load_args]
        if load_args is not None
        else ["python3", "-c", _IDLE]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, {"app": "load-client"}),
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": PYTHON_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": command,
                    "volumeMounts": [{"name": "code", "mountPath": "/client", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "code", "configMap": {"name": "load-code"}}],
        },
    }


def as_list(objects: list[Manifest]) -> Manifest:
    """One `kind: List` document for a single `kubectl apply -f -`."""
    return {"apiVersion": "v1", "kind": "List", "items": objects}
