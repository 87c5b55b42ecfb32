"""One real node, `real-1`, beside the KWOK nodes of the local cluster (`hack/cluster up --real-node`).

containerd v2 and runc run real containers; a bridge CNI (`rn0`, 10.244.0.0/24) gives pods
addresses the host reaches; kubelet and kube-proxy are built from the same k8s.io/kubernetes
module as the control plane (hack/build-binaries.sh node); the images come from
hack/images/build, imported into containerd because no registry is reachable. Traefik, built
from its Go module, runs on the host as the Gateway API data plane: it serves the Gateway
modeldeploy-gateway/ml-gateway on a free loopback port (written to .cluster/gateway) and sends
requests to the pods' bridge addresses.

The node is tainted modeldeploy.io/real-node=true:NoSchedule, so only pods that tolerate it
land there. What it changes on the host is undone by `down`: processes, mounts, the bridge,
iptables chains, cgroups and the sysctls the kubelet sets and never restores. iptables rules,
the bridge and the pod range are host-global: one real node per machine.

Only the standard library is used, as in hack/cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

HACK = Path(__file__).resolve().parent
ROOT = HACK.parent
STATE = ROOT / ".cluster"
WORK = STATE / "realnode"
KUBECONFIG = STATE / "kubeconfig"
TEMPLATES = HACK / "realnode"
CACHE = Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))

NODE_NAME = "real-1"
TAINT_KEY = "modeldeploy.io/real-node"
TAINT = f"{TAINT_KEY}=true:NoSchedule"
# A toleration for pods meant for the real node (tests, the demo).
TOLERATION = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
POD_CIDR = "10.244.0.0/24"
BRIDGE = "rn0"
# The host's address on the pods' bridge: host processes the pods must reach (the S3 server of
# the tests and the demo) listen here, never on an address off this machine.
BRIDGE_IP = "10.244.0.1"
CGROUP = "modeldeploy-realnode"
PAUSE_IMAGE = "localhost/modeldeploy-pause:3.10"
# The Gateway that Traefik, the real node's data plane, serves; ModelDeployments name it in
# spec.traffic.gateway. Where it listens (127.0.0.1:PORT) is written to GATEWAY_ADDRESS, where
# Traefik's ping, API and Prometheus metrics answer to GATEWAY_ADMIN_ADDRESS.
GATEWAY_NAMESPACE = "modeldeploy-gateway"
GATEWAY_NAME = "ml-gateway"
GATEWAY_ADDRESS = STATE / "gateway"
GATEWAY_ADMIN_ADDRESS = STATE / "gateway-admin"
# hack/images/build writes one archive per image; the node imports all of them.
IMAGES = ("pause", "modeldeploy", "sample-server")
# The kubelet sets some of these and never restores them; `down` writes back what `up` saw.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
)
# Chains the kubelet makes; kube-proxy --cleanup removes its own.
KUBELET_CHAINS = (
    ("filter", "KUBE-FIREWALL"),
    ("mangle", "KUBE-KUBELET-CANARY"),
    ("nat", "KUBE-KUBELET-CANARY"),
    ("filter", "KUBE-KUBELET-CANARY"),
    ("mangle", "KUBE-IPTABLES-HINT"),
)
# Host paths the kubelet and libcni use whatever their configuration says.
FIXED_HOST_DIRS = (
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/lib/kubelet"),
    Path("/var/lib/cni/results"),
    Path("/var/lib/cni"),
)
DEBIAN_PACKAGES = {
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
}
# Unix socket paths are limited to 107 bytes.
SOCKET_PATH_LIMIT = 107


class RealNodeError(Exception):
    """A failure with a message for a person (hack/cluster prints it as one line)."""


def versions() -> dict[str, str]:
    """hack/versions.env as a map (hack/cluster reads it through here too)."""
    pairs = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            pairs[key] = value
    return pairs


def node_binaries() -> dict[str, Path]:
    v = versions()
    kube = CACHE / f"kube-{v['KUBE_VERSION']}" / "bin"
    containerd = CACHE / f"containerd-{v['CONTAINERD_VERSION']}" / "bin"
    return {
        "traefik": CACHE / f"traefik-{v['TRAEFIK_VERSION']}" / "bin" / "traefik",
        "kubelet": kube / "kubelet",
        "kube-proxy": kube / "kube-proxy",
        "kubectl": kube / "kubectl",
        "containerd": containerd / "containerd",
        "ctr": containerd / "ctr",
        "containerd-shim-runc-v2": containerd / "containerd-shim-runc-v2",
    }


def image_archive(name: str) -> Path:
    return CACHE / "images" / f"{name}.tar"


# ------------------------------------------------------------------ what the host must offer


def node_ip() -> str:
    """The first global IPv4 address: the kubelet refuses a loopback node IP."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    for line in out.stdout.splitlines():
        fields = line.split()
        address = fields[fields.index("inet") + 1].split("/")[0]
        if not address.startswith("10.244."):
            return address
    return ""


def missing() -> str | None:
    """What keeps a real node from running here, in one line; None when nothing does."""
    if os.geteuid() != 0:
        return f"not root (uid {os.geteuid()}): containerd, runc and the kubelet need root"
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "no overlayfs in this kernel (/proc/filesystems), which containerd's snapshotter needs"
    cgroup_fs = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True)
    if cgroup_fs.stdout.strip() != "tmpfs":
        return "/sys/fs/cgroup is not a cgroup v1 (hybrid) hierarchy; only that layout has been tried"
    if not shutil.which("ip"):
        return "no `ip` command (Debian package iproute2)"
    if not node_ip():
        return "no global IPv4 address for the node (the kubelet refuses loopback)"
    socket_path = WORK / "containerd" / "containerd.sock.ttrpc"
    if len(str(socket_path)) >= SOCKET_PATH_LIMIT:
        return f"the checkout's path is too long for containerd's socket ({socket_path}); clone it nearer /"
    other = other_kubelet()
    if other:
        return (
            f"another checkout's {NODE_NAME} runs on this machine (kubelet pid {other}); the bridge, "
            "pod range and iptables rules are host-global: run hack/cluster down there first"
        )
    return None


def other_kubelet() -> int | None:
    """The pid of a kubelet playing NODE_NAME that is not ours (another checkout's real node)."""
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--hostname-override={NODE_NAME}"], capture_output=True, text=True
    )
    return next((int(number) for number in found.stdout.split() if int(number) != pid("kubelet")), None)


def bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0


def install_packages() -> None:
    wanted = [name for name, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not wanted:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RealNodeError(f"apt-get install {' '.join(wanted)} failed: {result.stderr.strip()[-500:]}")


def build() -> None:
    if not all(path.exists() for path in node_binaries().values()):
        run_step("building kubelet, kube-proxy and containerd", [str(HACK / "build-binaries.sh"), "node"])
    # A warm cache makes this a check of input hashes, seconds long.
    run_step("building the images", [str(HACK / "images" / "build"), *IMAGES])


def run_step(what: str, command: list[str]) -> None:
    if subprocess.run(command).returncode != 0:
        raise RealNodeError(f"{what} failed (see the lines above)")


# ------------------------------------------------------------------ up


def up(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The real node, joined to the running cluster; the caller has asked missing() first."""
    install_packages()
    build()
    started = time.monotonic()
    if running("kubelet") and running("traefik") and node_ready(kubectl):
        import_images()
        print(f"[realnode] {NODE_NAME} already running")
        return
    down(kubectl, quiet=True)
    for sub in (
        "run",
        "logs",
        "containerd",
        "cni/net.d",
        "cni/ipam",
        "kubelet",
        "kube-proxy",
        "pod-logs",
        "traefik",
    ):
        (WORK / sub).mkdir(parents=True, exist_ok=True)
    render_configs()
    save_sysctls()
    make_cgroups()
    make_bridge()
    start_containerd()
    import_images()
    start_kubelet()
    wait_until(f"{NODE_NAME} to become Ready", 90, lambda: node_ready(kubectl), "kubelet")
    start(
        "kube-proxy",
        [str(node_binaries()["kube-proxy"]), f"--config={WORK / 'kube-proxy' / 'config.yaml'}", "--v=2"],
    )
    wait_until(
        "kube-proxy to answer /healthz", 60, lambda: http_ok("http://127.0.0.1:20256/healthz"), "kube-proxy"
    )
    start_gateway(kubectl)
    print(
        f"[realnode] {NODE_NAME} Ready in {time.monotonic() - started:.1f}s "
        f"(pods {POD_CIDR}, host at {BRIDGE_IP}, taint {TAINT}); "
        f"gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} at {GATEWAY_ADDRESS.read_text()}"
    )


def start_gateway(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Traefik as a host process, and the GatewayClass and Gateway it serves, listening where
    render_configs() put its entryPoint."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=hack-cluster",
        "-f",
        str(WORK / "traefik" / "gateway.yaml"),
    )
    env = dict(os.environ, KUBECONFIG=str(KUBECONFIG))
    start(
        "traefik", [str(node_binaries()["traefik"]), f"--configFile={WORK / 'traefik' / 'traefik.yml'}"], env
    )
    admin = (WORK / "traefik" / "admin").read_text()
    wait_until("Traefik to answer /ping", 60, lambda: http_ok(f"http://{admin}/ping"), "traefik")

    def programmed() -> bool:
        result = kubectl(
            "get",
            "gateway",
            GATEWAY_NAME,
            "-n",
            GATEWAY_NAMESPACE,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Programmed')].status}",
            check=False,
        )
        return result.stdout.strip() == "True"

    wait_until(f"Gateway {GATEWAY_NAME} to be Programmed by Traefik", 60, programmed, "traefik")
    GATEWAY_ADDRESS.write_text((WORK / "traefik" / "web").read_text())
    GATEWAY_ADMIN_ADDRESS.write_text(admin)


def render_configs() -> None:
    values = {
        "work": WORK,
        "cgroup": CGROUP,
        "node_ip": node_ip(),
        "node_name": NODE_NAME,
        "pod_cidr": POD_CIDR,
        "bridge": BRIDGE,
        "bridge_ip": BRIDGE_IP,
        "pause_image": PAUSE_IMAGE,
        "kubeconfig": KUBECONFIG,
        "runc": shutil.which("runc") or DEBIAN_PACKAGES["runc"],
        "web_port": free_port(),
        "admin_port": free_port(),
        "gateway_namespace": GATEWAY_NAMESPACE,
        "gateway_name": GATEWAY_NAME,
    }
    (WORK / "traefik" / "web").write_text(f"127.0.0.1:{values['web_port']}")
    (WORK / "traefik" / "admin").write_text(f"127.0.0.1:{values['admin_port']}")
    targets = {
        "kubelet.yaml": WORK / "kubelet" / "config.yaml",
        "kube-proxy.yaml": WORK / "kube-proxy" / "config.yaml",
        "containerd.toml": WORK / "containerd" / "config.toml",
        "cni.conflist": WORK / "cni" / "net.d" / "10-modeldeploy.conflist",
        "traefik.yml": WORK / "traefik" / "traefik.yml",
        "gateway.yaml": WORK / "traefik" / "gateway.yaml",
    }
    for template, target in targets.items():
        target.write_text(Template((TEMPLATES / template).read_text()).substitute(values))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def save_sysctls() -> None:
    saved = WORK / "run" / "sysctl-before.json"
    if saved.exists():  # a half-torn-down node: keep what was there before it
        return
    values = {key: sysctl_path(key).read_text().strip() for key in SYSCTLS if sysctl_path(key).exists()}
    saved.write_text(json.dumps(values))


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def cgroup_controllers() -> list[Path]:
    """Every cgroup v1 hierarchy; the cgroup2 "unified" mount of a hybrid host is handled by `down`."""
    return [
        path
        for path in Path("/sys/fs/cgroup").iterdir()
        if path.is_dir() and not path.is_symlink() and path.name != "unified"
    ]


def make_cgroups() -> None:
    """The kubelet's cgroupRoot must exist in every controller; cpuset needs its cpus and mems."""
    for controller in cgroup_controllers():
        mine = controller / CGROUP
        mine.mkdir(exist_ok=True)
        if controller.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (mine / knob).write_text((controller / knob).read_text())


def make_bridge() -> None:
    """Made before any pod, so host processes can listen on BRIDGE_IP from the start; the CNI
    bridge plugin adopts an existing bridge that already has its gateway address."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
        ip("link", "add", BRIDGE, "type", "bridge")
    addresses = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], capture_output=True, text=True
    )
    if f" {BRIDGE_IP}/" not in addresses.stdout:
        ip("addr", "add", f"{BRIDGE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RealNodeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def start(name: str, command: list[str], env: dict[str, str] | None = None) -> None:
    log = (WORK / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (WORK / "run" / f"{name}.pid").write_text(str(process.pid))


def start_containerd() -> None:
    binaries = node_binaries()
    # containerd finds its runc shim on PATH.
    env = dict(os.environ, PATH=f"{binaries['containerd'].parent}:{os.environ.get('PATH', '')}")
    start(
        "containerd", [str(binaries["containerd"]), "--config", str(WORK / "containerd" / "config.toml")], env
    )
    sock = WORK / "containerd" / "containerd.sock"
    wait_until(
        "containerd to listen", 30, lambda: sock.is_socket() and ctr("version").returncode == 0, "containerd"
    )


def ctr(*args: str) -> subprocess.CompletedProcess[str]:
    sock = WORK / "containerd" / "containerd.sock"
    return subprocess.run(
        [str(node_binaries()["ctr"]), "--address", str(sock), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
    )


def import_images() -> None:
    """Imports each image archive the node has not imported in this form yet: a rebuilt image is
    imported again, an unchanged one costs nothing."""
    record = WORK / "run" / "imported.json"
    imported = json.loads(record.read_text()) if record.exists() else {}
    for name in IMAGES:
        archive = image_archive(name)
        if not archive.exists():
            raise RealNodeError(f"no image archive {archive}: run hack/images/build {name}")
        signature = f"{archive.stat().st_mtime_ns}:{archive.stat().st_size}"
        if imported.get(name) == signature:
            continue
        result = ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise RealNodeError(f"ctr images import {archive} failed: {result.stderr.strip()[-500:]}")
        imported[name] = signature
        record.write_text(json.dumps(imported))


def start_kubelet() -> None:
    start(
        "kubelet",
        [
            str(node_binaries()["kubelet"]),
            f"--config={WORK / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={KUBECONFIG}",
            f"--root-dir={WORK / 'kubelet' / 'root'}",
            f"--cert-dir={WORK / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={node_ip()}",
            "--node-labels=type=real",
            f"--register-with-taints={TAINT}",
            "--v=2",
        ],
    )


def node_ready(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> bool:
    result = kubectl(
        "get",
        "node",
        NODE_NAME,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "True"


def http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until(what: str, seconds: float, ready: Callable[[], bool], component: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        if not running(component):
            raise RealNodeError(
                f"{component} exited while waiting for {what}; its log: {WORK / 'logs'}/{component}.log"
            )
        time.sleep(0.2)
    raise RealNodeError(
        f"timed out after {seconds}s waiting for {what}; log: {WORK / 'logs'}/{component}.log"
    )


def pid(name: str) -> int | None:
    path = WORK / "run" / f"{name}.pid"
    return int(path.read_text()) if path.exists() else None


def running(name: str) -> bool:
    number = pid(name)
    if number is None:
        return False
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------ down


def down(kubectl: Callable[..., subprocess.CompletedProcess[str]] | None, quiet: bool = False) -> None:
    """Undoes `up`, in the order that frees everything: pods while the kubelet runs (CNI DEL frees
    their addresses and portmap chains), kube-proxy's rules, the kubelet, leftover containers,
    containerd, mounts deepest first, the bridge, cgroups, the kubelet's chains, sysctls.

    Also what a real node left when its processes were killed without `down` (a session that
    ended): the bridge, cgroups and iptables chains are host-global, so they are removed when no
    other checkout's kubelet uses them, even without this checkout's state."""
    if not WORK.exists() and not bridge_exists():
        return
    if kubectl is not None and running("kubelet"):
        kubectl(
            "delete",
            "pods",
            "--all-namespaces",
            f"--field-selector=spec.nodeName={NODE_NAME}",
            "--grace-period=1",
            "--wait=true",
            "--timeout=60s",
            check=False,
        )
        kubectl("delete", "node", NODE_NAME, "--wait=false", check=False)
    stop("traefik")
    for address in (GATEWAY_ADDRESS, GATEWAY_ADMIN_ADDRESS):
        address.unlink(missing_ok=True)
    stop("kube-proxy")
    stop("kubelet")
    if running("containerd"):
        for task in ctr("tasks", "ls", "-q").stdout.split():
            ctr("tasks", "kill", "--signal", "SIGKILL", task)
        time.sleep(0.5)
        for container in ctr("containers", "ls", "-q").stdout.split():
            ctr("tasks", "delete", container)
            ctr("containers", "delete", container)
    stop("containerd")
    for mount in mounts_under(WORK):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    if not other_kubelet():
        remove_host_state()
    restore_sysctls()
    shutil.rmtree(WORK, ignore_errors=True)
    if not quiet:
        left = mounts_under(WORK)
        chains = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.count(":KUBE-")
        print(f"[realnode] {NODE_NAME} stopped; left: {len(left)} mounts, {chains} KUBE iptables chains")


def remove_host_state() -> None:
    """The host-global part of a real node: kube-proxy's rules, the bridge, the cgroups, the
    kubelet's chains and the two host paths that cannot be moved."""
    kube_proxy = node_binaries()["kube-proxy"]
    if kube_proxy.exists():
        subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    remove_cgroups()
    remove_kubelet_chains()
    for directory in FIXED_HOST_DIRS:
        (directory / "kubelet.sock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left where something else uses it
            directory.rmdir()


def stop(name: str) -> None:
    number = pid(name)
    if number is not None and running(name):
        os.kill(number, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while running(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if running(name):
            os.kill(number, signal.SIGKILL)
    (WORK / "run" / f"{name}.pid").unlink(missing_ok=True)


def mounts_under(directory: Path) -> list[str]:
    prefix = f"{directory}/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    # mountinfo escapes spaces as \040; none of our paths has one.
    return sorted((point for point in points if point.startswith(prefix)), key=len, reverse=True)


def remove_cgroups() -> None:
    """Ours in every v1 controller, and what the kubelet and runc made under the unified mount."""
    for controller in [*cgroup_controllers(), Path("/sys/fs/cgroup/unified")]:
        mine = controller / CGROUP
        if not mine.is_dir():
            continue
        for directory in sorted(
            (p for p in mine.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            directory.rmdir()
        mine.rmdir()


def remove_kubelet_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        if not shutil.which(tool):
            continue
        for hook in ("INPUT", "OUTPUT"):
            while (
                subprocess.run([tool, "-D", hook, "-j", "KUBE-FIREWALL"], capture_output=True).returncode == 0
            ):
                pass
        for table, chain in KUBELET_CHAINS:
            subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
            subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)


def restore_sysctls() -> None:
    saved = WORK / "run" / "sysctl-before.json"
    if not saved.exists():
        return
    for key, value in json.loads(saved.read_text()).items():
        path = sysctl_path(key)
        if path.read_text().strip() != value:
            path.write_text(value)
