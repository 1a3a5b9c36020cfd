"""A real Kubernetes control plane (etcd + kube-apiserver) for tests, demos and benchmarks.

Like controller-runtime's envtest: no kubelet, scheduler or controller-manager, only the API, with RBAC
authorization on, TLS with our own CA, an admin token, and service-account signing keys so that
TokenRequest works. Binaries come from scripts/build-controlplane.sh (cached outside the checkout).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from testkit.ports import die_with_parent, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-controlplane.sh"
BUILD_COMMAND = "scripts/build-controlplane.sh"


class ControlPlaneError(RuntimeError):
    pass


def bin_dir() -> Path:
    """The cache directory the build script puts the binaries in (they may not exist yet)."""
    override = os.environ.get("K8S_HOSTS_CONTROLLER_BIN_DIR")
    if override:
        return Path(override)
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def missing_binaries(directory: Path, names: tuple[str, ...] = ("etcd", "kube-apiserver")) -> list[str]:
    return [name for name in names if not os.access(directory / name, os.X_OK)]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account signing key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=directory,
    )
    (directory / "san.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "san.cnf",
        "-out",
        "apiserver.crt",
        cwd=directory,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver on free loopback ports, state under ``workdir``."""

    workdir: Path
    binaries: Path = field(default_factory=bin_dir)
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    etcd: subprocess.Popen | None = None
    apiserver: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def logs(self) -> dict[str, Path]:
        return {"etcd": self.workdir / "etcd.log", "kube-apiserver": self.workdir / "kube-apiserver.log"}

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> ControlPlane:
        missing = missing_binaries(self.binaries)
        if missing:
            raise ControlPlaneError(
                f"control-plane binaries missing in {self.binaries}: {', '.join(missing)}; "
                f"build them with: {BUILD_COMMAND}"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.pki / "sa.key").exists():
            make_pki(self.pki)
            (self.workdir / "tokens.csv").write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
            self.write_kubeconfig(self.kubeconfig, token=self.admin_token, user="admin")
        atexit.register(self.stop)
        self.start_etcd()
        self.start_apiserver(timeout=timeout)
        return self

    def start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self.etcd = self._spawn(
            "etcd",
            [
                str(self.binaries / "etcd"),
                "--name=test",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=test={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def start_apiserver(self, timeout: float = 90.0) -> None:
        pki = self.pki
        self.apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.binaries / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                # A loopback advertise address cannot be an Endpoints address: skip that reconciler.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.workdir / 'certs'}",
                "--v=1",
            ],
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self.etcd), ("kube-apiserver", self.apiserver)):
                if proc is not None and proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            try:
                status, body = self.request("GET", "/readyz")
                if status == 200:
                    return
                last = body[-300:]
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {timeout}s ({last}):\n{self.tail('kube-apiserver')}"
        )

    def stop_apiserver(self, sig: int = signal.SIGTERM) -> None:
        self._stop(self.apiserver, sig)
        self.apiserver = None

    def stop_etcd(self, sig: int = signal.SIGTERM) -> None:
        self._stop(self.etcd, sig)
        self.etcd = None

    def kill(self) -> None:
        """SIGKILL both servers, as a crash would (state stays on disk)."""
        self.stop_apiserver(signal.SIGKILL)
        self.stop_etcd(signal.SIGKILL)

    def restart(self, timeout: float = 90.0) -> None:
        self.start_etcd()
        self.start_apiserver(timeout=timeout)

    def stop(self) -> None:
        self.stop_apiserver()
        self.stop_etcd()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs[name], "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            return subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()

    @staticmethod
    def _stop(proc: subprocess.Popen | None, sig: int) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs[name]
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ---- clients ---------------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki / "ca.crt"))

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        """A raw API call (no client library), for health checks and status-subresource writes."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def version(self) -> str:
        status, body = self.request("GET", "/version")
        if status != 200:
            raise ControlPlaneError(f"/version answered {status}: {body}")
        return json.loads(body)["gitVersion"]

    def write_kubeconfig(self, path: Path, *, token: str, user: str, namespace: str = "default") -> Path:
        """A kubeconfig that reaches this API server with a bearer token (JSON is valid YAML)."""
        ca = (self.pki / "ca.crt").read_bytes()
        import base64

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": user, "context": {"cluster": "test", "user": user, "namespace": namespace}}
            ],
            "current-context": user,
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def mint_token(self, namespace: str, service_account: str, expiration_seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount, through the TokenRequest API (as a kubelet would get it)."""
        status, body = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        if status != 201:
            raise ControlPlaneError(
                f"TokenRequest for {namespace}/{service_account} answered {status}: {body}"
            )
        return json.loads(body)["status"]["token"]

    def service_account_kubeconfig(self, path: Path, namespace: str, service_account: str) -> Path:
        token = self.mint_token(namespace, service_account)
        return self.write_kubeconfig(
            path, token=token, user=f"{namespace}-{service_account}", namespace=namespace
        )

    def role_kubeconfig(self, path: Path, namespace: str, service_account: str, rules: list[dict]) -> Path:
        """A ServiceAccount bound to a Role of exactly ``rules`` (all named ``service_account``) in
        ``namespace``, and a kubeconfig holding only its token."""
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        name = {"name": service_account}
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", **name}
        objects = [
            ("/api/v1", "serviceaccounts", {"metadata": name}),
            (rbac, "roles", {"metadata": name, "rules": rules}),
            (rbac, "rolebindings", {"metadata": name, "roleRef": role_ref, "subjects": [subject]}),
        ]
        for prefix, plural, body in objects:
            status, answer = self.request("POST", f"{prefix}/namespaces/{namespace}/{plural}", body)
            if status != 201:
                raise ControlPlaneError(f"creating {plural} {namespace}/{service_account}: {status} {answer}")
        return self.service_account_kubeconfig(path, namespace, service_account)
