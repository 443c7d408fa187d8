"""Small servers in pods for the e2e tests: a Python script from a ConfigMap run in the testbed's
python3 image, behind a Service, one replica, Ready once its port accepts connections."""

from __future__ import annotations

from collections.abc import Sequence

from tools.cluster import Cluster
from tools.sample import manifests

WHOAMI_APP = '''
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = f"pod={os.environ['POD_NAME']} " if "POD_NAME" in os.environ else ""

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"whoami {POD}peer={self.client_address[0]} path={self.path}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
'''
"""A downstream Service that says which address the connection came from (and, given
POD_NAME, which pod answered)."""


def python_app(name: str, code: str, port: int = 8080, service_port: int = 80,
               env: Sequence[manifests.Manifest] = (), volumes: Sequence[manifests.Manifest] = (),
               mounts: Sequence[manifests.Manifest] = ()) -> list[manifests.Manifest]:
    """`code` as /app/<name>.py listening on `port`; the Service `name` maps `service_port`
    (named `tcp`, or `http` for port 80) to it."""
    deployment = manifests.echo_deployment(name, replicas=1)
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    container.update(command=["python3", "-u", f"/app/{name}.py"], env=list(env), envFrom=[],
                     ports=[{"name": "serve", "containerPort": port}],
                     readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 1})
    container["volumeMounts"] += list(mounts)
    spec["volumes"] = [{"name": "code", "configMap": {"name": f"{name}-code"}}, *volumes]
    service = manifests.echo_service(name, port)
    service["spec"]["ports"][0].update(port=service_port,
                                       name="http" if service_port == 80 else "tcp")
    return [manifests.configmap(f"{name}-code", {f"{name}.py": code}), deployment, service]


def deploy(cluster: Cluster, namespace: str, apps: Sequence[Sequence[manifests.Manifest]]
           ) -> None:
    """Apply every app at once, then wait until each is rolled out and behind its Service."""
    cluster.apply(namespace, [obj for app in apps for obj in app])
    for app in apps:
        name = app[1]["metadata"]["name"]
        cluster.wait_rollout(namespace, f"deployment/{name}")
        cluster.wait_endpoints(namespace, name, 1)


def pod_ips(cluster: Cluster, namespace: str, app: str) -> set[str]:
    """The IPs of the app's pods that are not being deleted."""
    listing = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", f"app={app}")
    return {p["status"]["podIP"] for p in listing["items"] if p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")}
