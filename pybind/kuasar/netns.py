"""Named network namespaces (iproute2's `ip netns`), optionally wired to the host with a
veth pair and a /30 of their own, so a process inside is reachable over TCP at `address`.

    with NetworkNamespace(veth=True) as ns:
        subprocess.run(ns.run_prefix() + ["ip", "addr"])     # runs inside
        print(ns.address)                                    # e.g. 10.254.17.6

Names and subnets are random and checked against what exists, so parallel runs (pytest-xdist
workers, other test runs) do not collide. Deleting the namespace removes its veth, bridges
and iptables rules with it.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from typing import List, Optional

from . import errors

NETNS_DIR = "/run/netns"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise errors.Internal(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _used_networks() -> List[ipaddress.IPv4Network]:
    nets = []
    out = _ip("-4", "-o", "addr", "show", check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", check=False).stdout.splitlines():
        dst = line.split()[0] if line else ""
        if dst and dst != "default":
            try:
                nets.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                pass
    return nets


class NetworkNamespace:
    def __init__(self, name: Optional[str] = None, *, veth: bool = False,
                 pool: str = "10.254.0.0/16"):
        self.name = name or "kpy-" + secrets.token_hex(4)
        self.veth = veth
        self.pool = ipaddress.ip_network(pool)
        self.host_if = ""
        self.host_address = ""
        self.address = ""
        self.created = False

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    def run_prefix(self) -> List[str]:
        """Prepend to a command to run it in the namespace (only the network namespace
        changes: unlike `ip netns exec`, the mount namespace stays the host's)."""
        return ["nsenter", f"--net={self.path}", "--"]

    def create(self) -> "NetworkNamespace":
        if os.geteuid() != 0:
            raise errors.PermissionDenied("network namespaces need root")
        _ip("netns", "add", self.name)
        self.created = True
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            if self.veth:
                self._wire()
        except BaseException:
            self.delete()
            raise
        return self

    def _wire(self) -> None:
        used = _used_networks()
        n_subnets = 2 ** (30 - self.pool.prefixlen)
        for _ in range(64):
            i = secrets.randbelow(n_subnets)
            net = ipaddress.ip_network(
                (int(self.pool.network_address) + 4 * i, 30))
            if not any(net.overlaps(u) for u in used):
                break
        else:
            raise errors.ResourceExhausted(f"no free /30 in {self.pool}")
        host_ip, ns_ip = list(net.hosts())
        suffix = self.name[-8:]
        self.host_if, ns_if = f"kvh{suffix}", f"kvn{suffix}"
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", ns_if,
            "netns", self.name)
        _ip("addr", "add", f"{host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", self.name, "link", "set", ns_if, "up")
        _ip("-n", self.name, "route", "add", "default", "via", str(host_ip))
        self.host_address, self.address = str(host_ip), str(ns_ip)

    def delete(self) -> None:
        if self.host_if:
            _ip("link", "del", self.host_if, check=False)
        if self.created:
            _ip("netns", "del", self.name, check=False)
            self.created = False

    def __enter__(self) -> "NetworkNamespace":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.delete()
