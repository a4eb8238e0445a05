"""How much of the node a pod spec reaches: hostPath and capability tiers."""

from __future__ import annotations

import posixpath

from eksight.core.findings import Severity

# hostPath tiers. HIGH: the host's root or a container runtime socket (full control of every container on the
# node). MEDIUM: credentials, kubelet state, kernel interfaces and the host's configuration.
RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
)
HIGH_PATHS = ("/", *RUNTIME_SOCKETS)
# Paths sensitive with everything below them.
MEDIUM_TREES = (
    "/proc",
    "/root",
    "/home",
    "/boot",
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/etc/eks",
    "/etc/containerd",
    "/etc/docker",
    "/etc/systemd",
    "/etc/ssh",
    "/etc/sudoers.d",
    "/etc/cron.d",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/run/containerd",
    "/run/crio",
    "/var/run/crio",
    "/sys/kernel",
    "/sys/firmware",
    "/dev/mem",
    "/lib/modules",
)
# Paths sensitive themselves, whose subpaths are commonly benign (/etc/ssl/certs, /sys/fs/cgroup, ...).
MEDIUM_EXACT = (
    "/etc",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/crontab",
    "/dev",
    "/sys",
    "/var/run",
    "/run",
    "/var",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/opt",
)

# Capabilities. HIGH: each is a documented container escape on its own. MEDIUM: host-level power that needs
# one more step (network takeover, process inspection, kernel interfaces).
HIGH_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF"})
MEDIUM_CAPABILITIES = frozenset(
    {
        "NET_ADMIN",
        "SYS_PTRACE",
        "SYS_BOOT",
        "SYSLOG",
        "PERFMON",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "SYS_TIME",
        "DAC_OVERRIDE",
        "SETFCAP",
    }
)


# --- hostPath classification -----------------------------------------------------------------------------


def _normalize(path: str) -> str:
    """Absolute, without `.`/`..`, duplicate or trailing slashes; "" for an empty path."""
    text = path.strip()
    return posixpath.normpath("/" + text.lstrip("/")) if text else ""


def host_path_severity(raw: str) -> Severity | None:
    """How much of the node a hostPath volume hands to the pod (None: nothing we consider sensitive)."""
    path = _normalize(raw)
    if not path:
        return None
    if path in HIGH_PATHS or any(sock.startswith(path + "/") for sock in RUNTIME_SOCKETS):
        return Severity.HIGH  # the root, a runtime socket, or a directory that contains one
    if path in MEDIUM_EXACT or path in MEDIUM_TREES or any(path.startswith(tree + "/") for tree in MEDIUM_TREES):
        return Severity.MEDIUM
    if any(tree.startswith(path + "/") for tree in MEDIUM_TREES):
        return Severity.MEDIUM  # an ancestor of a sensitive tree (/var/lib, /etc/...)
    return None


def capability_name(raw: str) -> str:
    name = raw.strip().upper()
    return name[4:] if name.startswith("CAP_") else name
