#!/usr/bin/env python3
"""`make bench`: load-test a release `keel serve` next to pgbench on the same PostgreSQL.

Started by scripts/bench.sh, which builds the binary, runs the criterion micro-benchmarks and
finds the PostgreSQL image. This driver then:

1. starts a throwaway PostgreSQL container (removed on exit) and talks to it at the container's
   own address, not through Docker's userland port proxy (which costs a third of a core at
   these request rates);
2. migrates, and seeds with SQL `generate_series`: products (BENCH_PRODUCTS, default 10000),
   1,000 users, 20,000 orders; a pgbench database beside it (`pgbench -i`);
3. starts `keel serve` with the production configuration (JSON logs at info, OTLP export to a
   sink on loopback that discards what it receives), bound to 127.0.0.1;
4. drives each endpoint with wrk for a fixed time after a warm-up, and runs `pgbench -S` and
   the TPC-B-like default at the same client counts against the same server;
5. writes bench/results/YYYY-MM-DD.json and regenerates docs/benchmarks.md and its chart.

Standard library only. Every setting comes from BENCH_* environment variables (see `usage`).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import http.server
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-not-secret-1"
USERS = 1000
ORDERS = 20000
# Products in the hot set that GET /products/{id} and POST /orders pick from.
HOT_PRODUCTS = 1000
# A prefix search matching 1/16 of the catalog ("Brass" x "washer"): the broad search of
# docs/measurements.md, 62,500 rows of a million.
BROAD_QUERY = "brass wash"
PGBENCH_SCALE = 16  # at least the client count of the TPC-B run, so branches rarely collide


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------ settings ----


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise BenchError(f"{name}={value!r}: expected a whole number") from None


class Options:
    def __init__(self) -> None:
        self.keel = Path(os.environ.get("KEEL_BIN", ""))
        self.pg_image = os.environ.get("BENCH_PG_IMAGE", "")
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.warmup = env_int("BENCH_WARMUP", 1 if self.quick else 3)
        self.duration = env_int("BENCH_DURATION", 3 if self.quick else 10)
        self.threads = env_int("BENCH_THREADS", 2)
        self.connections = env_int("BENCH_CONNECTIONS", 16)
        self.read_connections = env_int("BENCH_READ_CONNECTIONS", 64)
        sizes = os.environ.get("BENCH_PRODUCTS", "").replace(",", " ").split()
        try:
            self.products = sorted({int(size) for size in sizes}) or [10000]
        except ValueError:
            raise BenchError(f"BENCH_PRODUCTS={sizes!r}: expected catalog sizes") from None
        if self.products[0] < HOT_PRODUCTS:
            raise BenchError(f"BENCH_PRODUCTS: at least {HOT_PRODUCTS} products")
        # A peer service measured side by side with GET /users/me (issue 15 compares with
        # realworld-axum-sqlx's GET /api/user): started by hand beforehand, never by this tool.
        self.peer_url = os.environ.get("BENCH_PEER_URL", "")
        self.peer_name = os.environ.get("BENCH_PEER_NAME", "peer")
        self.peer_pid = env_int("BENCH_PEER_PID", 0) or None
        header = os.environ.get("BENCH_PEER_HEADER", "")
        if header and ":" not in header:
            raise BenchError(f"BENCH_PEER_HEADER={header!r}: expected 'Name: value'")
        self.peer_headers = dict([tuple(part.strip() for part in header.split(":", 1))]) if header else {}
        self.criterion_dir = Path(os.environ.get("BENCH_CRITERION_DIR", ""))
        self.results_dir = ROOT / "bench" / "results"
        self.docs = ROOT / "docs" / "benchmarks.md"
        self.chart = ROOT / "docs" / "benchmarks.svg"
        if not self.keel.is_file():
            raise BenchError(f"KEEL_BIN={self.keel}: no such binary")
        if not self.pg_image:
            raise BenchError("BENCH_PG_IMAGE is not set")


# -------------------------------------------------------------------------- processes ----


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("stdout", subprocess.PIPE)
    try:
        return subprocess.run(cmd, **kwargs)
    except subprocess.CalledProcessError as err:
        detail = (err.stderr or err.stdout or "").strip().splitlines()[-5:]
        raise BenchError(f"{cmd[0]} {' '.join(cmd[1:3])} failed: {' | '.join(detail)}") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat (fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def process_memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def load_average() -> list[float]:
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


class CpuMeter:
    """CPU over one run, in cores busy: the server, PostgreSQL (its container's cgroup), the
    load generator (this driver's waited children: wrk or pgbench), this driver itself (the OTLP
    sink), and everything else on the machine, which is other people's work on a shared box."""

    def __init__(self, postgres: "Postgres", pid: int | None = None) -> None:
        self.postgres = postgres
        self.pid = pid

    @staticmethod
    def _rusage(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def _sample(self) -> dict:
        busy, total = machine_cpu()
        return {
            "server": process_cpu_seconds(self.pid) if self.pid else 0.0,
            "postgres": self.postgres.cpu_seconds(),
            "load_generator": self._rusage(resource.RUSAGE_CHILDREN),
            "harness": self._rusage(resource.RUSAGE_SELF),
            "busy": busy,
            "total": total,
            "wall": time.perf_counter(),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict:
        after = self._sample()
        before = self.before
        wall = after["wall"] - before["wall"]
        cores = os.cpu_count() or 1

        def rate(key: str) -> float | None:
            if before[key] is None or after[key] is None:
                return None
            return round((after[key] - before[key]) / wall, 2)

        machine = (after["busy"] - before["busy"]) / max(after["total"] - before["total"], 1) * cores
        known = [rate(key) for key in ("server", "postgres", "load_generator", "harness")]
        return {
            "wall_s": round(wall, 2),
            "server_s": after["server"] - before["server"],
            "cores": {
                "server": known[0],
                "postgres": known[1],
                "load_generator": known[2],
                "harness": known[3],
                "machine": round(machine, 2),
                "other": round(max(machine - sum(k or 0 for k in known), 0), 2),
            },
        }


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


# ------------------------------------------------------------------------------ machine ----


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    return {
        "cores": os.cpu_count(),
        "cpu_model": models[0].strip() if models else platform.processor(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.freedesktop_os_release().get("PRETTY_NAME", "")
        if hasattr(platform, "freedesktop_os_release")
        else "",
    }


def loadavg_before_micro() -> dict:
    """The load average scripts/bench.sh saw before the criterion benchmarks, when it ran them."""
    values = os.environ.get("BENCH_LOADAVG_MICRO", "").split()[:3]
    try:
        return {"before_micro": [float(value) for value in values]} if values else {}
    except ValueError:
        return {}


def tool_version(cmd: list[str]) -> str:
    try:
        result = subprocess.run(cmd, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "unknown"


def git_info() -> dict:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True)
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


# --------------------------------------------------------------------------- PostgreSQL ----


class Postgres:
    """A throwaway PostgreSQL container, reached at its own address on Docker's bridge."""

    SETTINGS = {
        # Room for the service's pool (20), its worker (4) and 64 pgbench clients.
        "max_connections": "200",
        # The million-product catalog and the pgbench tables stay in memory.
        "shared_buffers": "512MB",
        "effective_cache_size": "2GB",
    }

    DATA = "/var/lib/postgresql/data"

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = f"keel-bench-pg-{os.getpid()}"
        self.address = ""
        self.container_id = ""

    def start(self) -> None:
        args = [item for key, value in self.SETTINGS.items() for item in ("-c", f"{key}={value}")]
        run(
            [
                "docker", "run", "-d", "--name", self.name, "--label", "keel.disposable=true",
                # Parallel query uses dynamic shared memory in /dev/shm; Docker gives 64 MB.
                "--shm-size", "512m",
                # The data directory on a volume (the host's own filesystem, removed with the
                # container), not in the container's layer: where Docker's storage driver is
                # fuse-overlayfs every write would pass through a FUSE daemon outside the container.
                "--mount", f"type=volume,dst={self.DATA}",
                "-e", "POSTGRES_USER=keel", "-e", "POSTGRES_PASSWORD=keel", "-e", "POSTGRES_DB=keel",
                self.image, *args,
            ]
        )
        self.container_id = run(["docker", "inspect", "-f", "{{.Id}}", self.name]).stdout.strip()
        self.address = run(
            ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", self.name]
        ).stdout.split()[0]
        # Only a login over TCP proves the final server is up (init-time servers use a socket).
        for _ in range(600):
            probe = subprocess.run(
                ["docker", "exec", "-e", "PGPASSWORD=keel", self.name, "psql", "-h", "127.0.0.1",
                 "-U", "keel", "-d", "keel", "-qtAc", "SELECT 1"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        logs = subprocess.run(["docker", "logs", "--tail", "20", self.name], capture_output=True, text=True)
        raise BenchError(f"PostgreSQL did not become ready: {logs.stderr.strip()[-800:]}")

    def url(self, database: str = "keel") -> str:
        return f"postgres://keel:keel@{self.address}:5432/{database}"

    def psql(self, sql: str, database: str = "keel") -> str:
        return run(
            ["docker", "exec", "-i", self.name, "psql", "-U", "keel", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-qtA"],
            input=sql,
            stderr=subprocess.PIPE,
        ).stdout.strip()

    def version(self) -> str:
        return self.psql("SHOW server_version;")

    def cpu_seconds(self) -> float | None:
        """CPU time of every process in the container, from its cgroup (v1 or v2)."""
        candidates = [
            (f"/sys/fs/cgroup/system.slice/docker-{self.container_id}.scope/cpu.stat", "v2"),
            (f"/sys/fs/cgroup/docker/{self.container_id}/cpu.stat", "v2"),
            (f"/sys/fs/cgroup/cpuacct/docker/{self.container_id}/cpuacct.usage", "v1"),
            (f"/sys/fs/cgroup/cpu,cpuacct/docker/{self.container_id}/cpuacct.usage", "v1"),
        ]
        for path, kind in candidates:
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if kind == "v1":
                return int(text.strip()) / 1e9
            match = re.search(r"^usage_usec (\d+)", text, re.M)
            if match:
                return int(match.group(1)) / 1e6
        return None

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", "-v", self.name], capture_output=True)


def uuid7_function() -> str:
    # UUIDv7 from a timestamp (PostgreSQL 17 has no uuidv7()): ids then sort by creation time,
    # as the service's own Uuid::now_v7 ids do, so keyset pages walk the index the same way.
    return """
CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
           PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
"""


def products_sql(first: int, last: int) -> str:
    # Names combine a material and an item so that "brass wash" matches 1 in 16 products.
    # Stock is large enough that no order in the run can exhaust it.
    return uuid7_function() + f"""
INSERT INTO products (id, sku, name, description, price_cents, currency, stock, created_at, updated_at)
SELECT pg_temp.uuid7(ts), 'BENCH-' || lpad(i::text, 8, '0'),
       (ARRAY['Steel', 'Stainless', 'Brass', 'Zinc'])[1 + i % 4] || ' '
         || (ARRAY['hex bolt', 'hex nut', 'washer', 'machine screw'])[1 + (i / 4) % 4]
         || ' M' || (4 + 2 * ((i / 16) % 5)),
       'Bench product ' || i || ', for load tests only.',
       100 + (i * 37) % 10000, 'EUR', 1000000000, ts, ts
FROM generate_series({first}, {last}) AS i,
     LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + i * interval '1 millisecond' AS ts) AS t;
VACUUM ANALYZE products;
"""


def people_and_orders_sql() -> str:
    return uuid7_function() + f"""
INSERT INTO users (id, email, display_name, password_hash)
SELECT pg_temp.uuid7(timestamptz '2026-01-01 00:00:00+00' + i * interval '1 millisecond'),
       'user' || i || '@bench.test', 'Bench user ' || i,
       (SELECT password_hash FROM users WHERE email = 'admin@bench.test')
FROM generate_series(1, {USERS}) AS i;

CREATE TEMP TABLE bench_users AS
  SELECT row_number() OVER (ORDER BY id) AS n, id FROM users WHERE email LIKE 'user%@bench.test';
CREATE TEMP TABLE bench_products AS
  SELECT row_number() OVER (ORDER BY id) AS n, id, sku, name, price_cents
  FROM (SELECT * FROM products ORDER BY id LIMIT 10000) AS p;
CREATE TEMP TABLE bench_orders AS
  SELECT o, pg_temp.uuid7(timestamptz '2026-02-01 00:00:00+00' + o * interval '1 second') AS id,
         (SELECT id FROM bench_users WHERE n = 1 + o % {USERS}) AS user_id
  FROM generate_series(1, {ORDERS}) AS o;

INSERT INTO orders (id, user_id, status, currency, total_cents, created_at, updated_at)
SELECT id, user_id,
       CASE WHEN o % 10 = 0 THEN 'cancelled' WHEN o % 3 = 0 THEN 'fulfilled' ELSE 'placed' END,
       'EUR', 0,
       timestamptz '2026-02-01 00:00:00+00' + o * interval '1 second',
       timestamptz '2026-02-01 00:00:00+00' + o * interval '1 second'
FROM bench_orders;

INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_cents)
SELECT b.id, l, p.id, p.sku, p.name, 1 + (b.o + l) % 3, p.price_cents
FROM bench_orders AS b
CROSS JOIN generate_series(1, 2) AS l
JOIN bench_products AS p ON p.n = 1 + (b.o * 7 + l * 13) % (SELECT count(*) FROM bench_products);

UPDATE orders SET total_cents = t.total
FROM (SELECT order_id, sum(quantity * unit_price_cents) AS total FROM order_lines GROUP BY order_id) AS t
WHERE orders.id = t.order_id;
VACUUM ANALYZE;
"""


# ---------------------------------------------------------------------- telemetry sink ----


class OtlpSink:
    """Accepts OTLP/HTTP exports on loopback and discards them, counting what arrived."""

    def __init__(self) -> None:
        sink = self
        self.requests: dict[str, int] = {}
        self.bytes = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                with sink.lock:
                    sink.requests[self.path] = sink.requests.get(self.path, 0) + 1
                    sink.bytes += length
                # An empty protobuf message is a complete Export*ServiceResponse.
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()

    def summary(self) -> dict:
        with self.lock:
            return {"requests": dict(sorted(self.requests.items())), "bytes": self.bytes}


# ------------------------------------------------------------------------------ server ----


def signing_key_pem() -> str:
    return run(["openssl", "genpkey", "-algorithm", "ed25519"]).stdout


class Keel:
    def __init__(self, binary: Path, database_url: str, otlp_port: int, workdir: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "keel.log"
        self.process: subprocess.Popen | None = None
        # The production configuration, with what it insists on supplied the way an operator
        # would: a signing key, a webhook encryption key, an explicit database URL. The database
        # has no TLS here, so verify-full is switched off; email is off (no SMTP server); the
        # listener is loopback only, since production binds every address. The login limits
        # stay as configured: every wrk client shares one address, but successful logins and
        # attempts wrk abandons at the end of a run are taken back.
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("APP_", "APP__", "OTEL_", "RUST_LOG"))},
            "APP_ENV": "production",
            "APP_CONFIG_DIR": str(workdir / "no-config-dir"),
            "APP__DATABASE__URL": database_url,
            "APP__DATABASE__REQUIRE_VERIFIED_TLS": "false",
            "APP__AUTH__SIGNING_KEY": signing_key_pem(),
            "APP__WEBHOOKS__ENCRYPTION_KEYS__K1": base64.b64encode(os.urandom(32)).decode(),
            "APP__EMAIL__ENABLED": "false",
            "APP__SERVER__HOST": "127.0.0.1",
            "APP__SERVER__PORT": str(self.port),
            "APP__TELEMETRY__OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "APP__TELEMETRY__OTLP_PROTOCOL": "http/protobuf",
        }

    def command(self, *args: str, stdin: str | None = None) -> str:
        result = run([str(self.binary), *args], env=self.env, input=stdin, stderr=subprocess.PIPE)
        return (result.stdout + result.stderr).strip()

    def start(self) -> float:
        """Starts `keel serve`; returns milliseconds from spawn to /health/ready = 200."""
        log_file = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(self.binary), "serve"], env=self.env, stdout=log_file, stderr=subprocess.STDOUT
        )
        log_file.close()
        deadline = started + 30
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"keel serve exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return round((time.perf_counter() - started) * 1000, 1)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.002)
        raise BenchError(f"keel serve not ready after 30 s: {self.log_tail()}")

    def log_tail(self, lines: int = 10) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def error_statuses(self, offset: int) -> dict[str, int]:
        """Error responses (4xx, 5xx) in the access log written since `offset`, by status."""
        counts: dict[str, int] = {}
        pattern = re.compile(rb'"message":"request completed","status":([45]\d\d)')
        with self.log_path.open("rb") as file:
            file.seek(offset)
            for line in file:
                match = pattern.search(line)
                if match:
                    status = match.group(1).decode()
                    counts[status] = counts.get(status, 0) + 1
        return dict(sorted(counts.items()))

    def log_lines(self) -> int:
        with self.log_path.open("rb") as file:
            return sum(1 for _ in file)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise BenchError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from None

    def login(self, email: str) -> str:
        return self.request("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})["access_token"]

    def stop(self) -> int | None:
        """SIGTERM, as an orchestrator stops it; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


# ------------------------------------------------------------------------------- load ----

# wrk's summary as one JSON line; latencies are in microseconds.
WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'KEEL_BENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def cycling_script(requests: list[tuple[str, str, str | None]], headers: dict[str, str]) -> str:
    """A wrk script cycling through pre-formatted requests (formatted once, in init)."""
    header_table = "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"
    entries = ",\n".join(
        "  {" + ", ".join([lua_string(method), lua_string(path), lua_string(body) if body else "nil"]) + "}"
        for method, path, body in requests
    )
    return f"""
local specs = {{
{entries}
}}
local headers = {header_table}
local formatted = {{}}
local next_index = 0
local threads = 0
-- Each thread starts at its own place in the list.
setup = function(thread)
  threads = threads + 1
  thread:set("offset", threads * 97)
end
init = function(args)
  -- wrk.format uses the headers given instead of wrk's own (the -H options): merge them.
  for name, value in pairs(wrk.headers) do
    if headers[name] == nil then headers[name] = value end
  end
  for i, spec in ipairs(specs) do
    formatted[i] = wrk.format(spec[1], spec[2], headers, spec[3])
  end
  next_index = (offset or 0) % #formatted
end
request = function()
  next_index = next_index % #formatted + 1
  return formatted[next_index]
end
""" + WRK_DONE


class Load:
    def __init__(self, options: Options, keel: Keel, postgres: Postgres, workdir: Path) -> None:
        self.options = options
        self.keel = keel
        self.postgres = postgres
        self.workdir = workdir

    def script(self, name: str, text: str) -> Path:
        path = self.workdir / f"{name}.lua"
        path.write_text(text)
        return path

    def wrk(self, url: str, connections: int, duration: int, script: Path, headers: dict[str, str], threads: int | None = None) -> subprocess.Popen:
        threads = min(threads or self.options.threads, connections)
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s", "-s", str(script)]
        for key, value in headers.items():
            cmd += ["-H", f"{key}: {value}"]
        return subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def wrk_result(process: subprocess.Popen) -> dict:
        stdout, stderr = process.communicate(timeout=120)
        match = re.search(r"^KEEL_BENCH (\{.*\})$", stdout, re.M)
        if process.returncode != 0 or not match:
            raise BenchError(f"wrk failed ({process.returncode}): {(stderr or stdout).strip()[-500:]}")
        summary = json.loads(match.group(1))
        seconds = summary["duration_us"] / 1e6
        errors = summary["errors"]
        # No request completed (all slower than the run): wrk reports zeros, which are no latency.
        done = summary["requests"] > 0
        return {
            "requests": summary["requests"],
            "req_per_s": round(summary["requests"] / seconds, 1),
            "latency_ms": {key: round(value / 1000, 3) if done else None for key, value in summary["latency_us"].items()},
            "errors": {
                "non_2xx_3xx": errors["status"],
                "socket": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            },
            "transfer_mib_per_s": round(summary["bytes"] / seconds / 1024 / 1024, 2),
        }

    def measure(self, name: str, label: str, method: str, path: str, connections: int, script: Path,
                headers: dict[str, str] | None = None, probe: bool = False, products: int | None = None,
                url: str | None = None, pid: int | None = None, peer: bool = False) -> dict:
        """Warm up, then one measured wrk run with the server's and database's CPU around it.
        A peer (`url`, `pid`) is measured the same way, minus Keel's own log."""
        headers = headers or {}
        url = url or f"{self.keel.base}{path}"
        pid = pid if peer else self.keel.pid
        log(f"{label} at {connections} connections: {self.options.warmup} s warm-up, {self.options.duration} s measured")
        self.wrk_result(self.wrk(url, connections, self.options.warmup, script, headers))

        meter = CpuMeter(self.postgres, pid)
        log_offset = self.keel.log_size()
        meter.start()
        process = self.wrk(url, connections, self.options.duration, script, headers)
        probe_process = None
        if probe:
            # One extra client on /health/live: does the executor stay responsive meanwhile?
            probe_process = self.wrk(f"{self.keel.base}/health/live", 1, self.options.duration, self.live_script, {}, threads=1)
        result = self.wrk_result(process)
        probe_result = self.wrk_result(probe_process) if probe_process is not None else None
        cpu = meter.stop()
        memory = process_memory_kib(pid) if pid else {}

        result.update(
            {
                "name": name,
                "label": label,
                "method": method,
                "path": path,
                "connections": connections,
                "threads": min(self.options.threads, connections),
                "duration_s": self.options.duration,
                "products": products or self.options.products[0],
                "peer": peer,
                "server": {
                    "cpu_cores": cpu["cores"]["server"],
                    "cpu_us_per_request": round(cpu["server_s"] / result["requests"] * 1e6, 1) if result["requests"] else None,
                    "rss_mib": mib(memory.get("VmRSS", 0)),
                    "rss_peak_mib": mib(memory.get("VmHWM", 0)),
                },
                "cpu_cores": cpu["cores"],
            }
        )
        if probe_result is not None:
            result["health_live_probe"] = {"req_per_s": probe_result["req_per_s"], "latency_ms": probe_result["latency_ms"]}
        if result["errors"]["non_2xx_3xx"] and not peer:
            result["error_statuses"] = self.keel.error_statuses(log_offset)
        problems = result["errors"]
        if problems["non_2xx_3xx"] or problems["socket"]:
            log(f"  warning: {problems['non_2xx_3xx']} error responses {result.get('error_statuses', {})}, "
                f"{problems['socket']} socket errors or timeouts")
        log(
            f"  {result['req_per_s']:,.0f} req/s, p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms, "
            f"server {result['server']['cpu_cores']} cores, RSS {result['server']['rss_mib']} MiB, "
            f"other work on the machine {cpu['cores']['other']} cores"
        )
        return result

    def prepare_scripts(self) -> None:
        self.live_script = self.script("plain", WRK_DONE)
        ids = self.postgres.psql(
            f"SELECT id FROM products ORDER BY id DESC LIMIT {HOT_PRODUCTS * 10};"
        ).split()
        rng = random.Random(15)
        self.hot_ids = rng.sample(ids, HOT_PRODUCTS)
        self.product_script = self.script(
            "product", cycling_script([("GET", f"/api/v1/products/{i}", None) for i in self.hot_ids], {})
        )
        self.order_script = self.script(
            "order",
            cycling_script(
                [("POST", "/api/v1/orders", json.dumps({"items": [{"product_id": i, "quantity": 1}]})) for i in self.hot_ids],
                {"Content-Type": "application/json"},
            ),
        )
        emails = [f"user{n}@bench.test" for n in range(1, USERS + 1)]
        self.login_script = self.script(
            "login",
            cycling_script(
                [("POST", "/api/v1/auth/login", json.dumps({"email": e, "password": PASSWORD})) for e in emails],
                {"Content-Type": "application/json"},
            ),
        )

    def catalog_runs(self, products: int, first: bool) -> list[dict]:
        o = self.options
        runs = []
        list_path = "/api/v1/products?limit=20"
        search_path = "/api/v1/products?limit=20&q=" + urllib.request.quote(BROAD_QUERY)
        for connections in ([o.connections] if o.quick else [o.connections, o.read_connections]):
            runs.append(self.measure("products_list", "GET /products?limit=20", "GET", list_path, connections, self.live_script, products=products))
            runs.append(self.measure("products_search", f"GET /products?q={BROAD_QUERY}", "GET", search_path, connections, self.live_script, products=products))
            if first or not o.quick:
                runs.append(self.measure("product_by_id", "GET /products/{id}", "GET", "/api/v1/products/{id}", connections, self.product_script, products=products))
        return runs

    def service_runs(self) -> list[dict]:
        o = self.options
        runs = []
        member = "user1@bench.test"
        read_counts = [o.connections] if o.quick else [o.connections, o.read_connections]
        for connections in read_counts:
            runs.append(self.measure("health_live", "GET /health/live", "GET", "/health/live", connections, self.live_script))
            # A fresh token for each run: access tokens live 15 minutes.
            token = self.keel.login(member)
            runs.append(self.measure("users_me", "GET /users/me", "GET", "/api/v1/users/me", connections, self.live_script,
                                     headers={"Authorization": f"Bearer {token}"}))
            if o.peer_url:
                path = urllib.parse.urlsplit(o.peer_url).path
                runs.append(self.measure("peer_read", f"{o.peer_name}: GET {path}", "GET", path, connections, self.live_script,
                                         headers=o.peer_headers, url=o.peer_url, pid=o.peer_pid, peer=True))
        token = self.keel.login(member)
        runs.append(self.measure("orders_create", "POST /orders", "POST", "/api/v1/orders", o.connections, self.order_script,
                                 headers={"Authorization": f"Bearer {token}"}))
        runs.append(self.measure("auth_login", "POST /auth/login", "POST", "/api/v1/auth/login", o.connections, self.login_script, probe=True))
        return runs


# ---------------------------------------------------------------------------- pgbench ----


class PgBench:
    def __init__(self, options: Options, postgres: Postgres) -> None:
        self.options = options
        self.postgres = postgres
        # The host's pgbench talks to the container over the same bridge as the service; without
        # one on the host, the container's own runs over its loopback.
        self.on_host = bool(subprocess.run(["sh", "-c", "command -v pgbench"], capture_output=True).stdout.strip())
        self.version = ""

    def command(self, *args: str) -> list[str]:
        if self.on_host:
            return ["env", "PGPASSWORD=keel", "pgbench", "-h", self.postgres.address, "-U", "keel", *args]
        return ["docker", "exec", "-e", "PGPASSWORD=keel", self.postgres.name, "pgbench", "-h", "127.0.0.1", "-U", "keel", *args]

    def initialise(self) -> None:
        self.postgres.psql("CREATE DATABASE pgbench;")
        log(f"pgbench -i -s {PGBENCH_SCALE} ({'host' if self.on_host else 'inside the container'})")
        run(self.command("-i", "-q", "-s", str(PGBENCH_SCALE), "pgbench"), stderr=subprocess.PIPE)
        version = ["pgbench", "--version"] if self.on_host else ["docker", "exec", self.postgres.name, "pgbench", "--version"]
        self.version = run(version).stdout.strip()

    def measure(self, name: str, label: str, args: list[str], clients: int) -> dict:
        o = self.options
        threads = min(o.threads, clients)
        base = ["-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), *args]
        log(f"{label} at {clients} clients: {o.warmup} s warm-up, {o.duration} s measured")
        run(self.command(*base, "-T", str(o.warmup), "pgbench"), stderr=subprocess.PIPE)
        meter = CpuMeter(self.postgres)
        meter.start()
        output = run(self.command(*base, "-T", str(o.duration), "pgbench"), stderr=subprocess.PIPE).stdout
        cpu = meter.stop()
        tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", output, re.M)
        latency = re.search(r"^latency average = ([\d.]+) ms", output, re.M)
        failed = re.search(r"^number of failed transactions: (\d+)", output, re.M)
        if not tps:
            raise BenchError(f"pgbench printed no tps: {output[-400:]}")
        result = {
            "name": name,
            "label": label,
            "options": " ".join(base),
            "clients": clients,
            "duration_s": o.duration,
            "tps": round(float(tps.group(1)), 1),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "failed_transactions": int(failed.group(1)) if failed else 0,
            "cpu_cores": cpu["cores"],
        }
        log(f"  {result['tps']:,.0f} TPS, latency average {result['latency_avg_ms']} ms, "
            f"other work on the machine {cpu['cores']['other']} cores")
        return result

    def runs(self) -> list[dict]:
        o = self.options
        runs = [self.measure("select_only", "pgbench -S", ["-S"], o.connections)]
        if not o.quick:
            runs.append(self.measure("select_only", "pgbench -S", ["-S"], o.read_connections))
            runs.append(self.measure("tpcb_like", "pgbench (TPC-B-like)", [], o.connections))
        return runs


# -------------------------------------------------------------------------- criterion ----


def criterion_results(directory: Path, since: float) -> list[dict]:
    """Every benchmark criterion measured in this run (older result files are ignored)."""
    results = []
    if not directory.is_dir():
        return results
    for estimates in sorted(directory.glob("**/new/estimates.json")):
        if estimates.stat().st_mtime < since:
            continue
        meta_path = estimates.parent / "benchmark.json"
        try:
            meta = json.loads(meta_path.read_text())
            data = json.loads(estimates.read_text())
        except (OSError, ValueError):
            continue
        mean_ns = data["mean"]["point_estimate"]
        elements = 1
        throughput = meta.get("throughput") or {}
        if isinstance(throughput, dict) and "Elements" in throughput:
            elements = throughput["Elements"]
        results.append(
            {
                "id": meta.get("full_id") or f"{meta.get('group_id')}/{meta.get('function_id')}",
                "group": meta.get("group_id"),
                "function": meta.get("function_id"),
                "mean_ns": round(mean_ns, 1),
                "median_ns": round(data["median"]["point_estimate"], 1),
                "ci95_ns": [round(data["mean"]["confidence_interval"]["lower_bound"], 1),
                            round(data["mean"]["confidence_interval"]["upper_bound"], 1)],
                "elements_per_iteration": elements,
                "per_second": round(elements / (mean_ns / 1e9), 1),
            }
        )
    return results


# ------------------------------------------------------------------------------ report ----


def fmt_int(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def fmt_cores(cores: float | None) -> str:
    return "–" if cores is None else f"{cores:.2f}"


def fmt_errors(run_: dict) -> str:
    """Error responses by status (from the server's log), then socket errors and timeouts."""
    parts = [f"{count:,}× {status}" for status, count in run_.get("error_statuses", {}).items()]
    if run_["errors"]["non_2xx_3xx"] and not parts:
        parts.append(f"{run_['errors']['non_2xx_3xx']:,}× 4xx/5xx")
    if run_["errors"]["socket"]:
        parts.append(f"{run_['errors']['socket']:,}× timeout/socket")
    return ", ".join(parts) or "0"


def fmt_rate(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.1f}"


def fmt_duration_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def ceiling(result: dict, clients: int) -> float | None:
    for run_ in result["pgbench"]:
        if run_["name"] == "select_only" and run_["clients"] == clients:
            return run_["tps"]
    return None


def compact(count: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size and count % (size // 10) == 0:
            return f"{count / size:g}{suffix}"
    return f"{count:,}"


def chart_svg(result: dict) -> str:
    """Horizontal bars of req/s per run, with the pgbench -S ceilings as marked lines."""
    runs = result["runs"]
    ceilings = [(p["label"] + f" -c{p['clients']}", p["tps"], p["name"]) for p in result["pgbench"]]
    top = max([r["req_per_s"] for r in runs] + [c[1] for c in ceilings] + [1])
    width, label_w, value_w, bar_h, gap, head = 960, 360, 90, 18, 6, 46
    plot_w = width - label_w - value_w
    height = head + len(runs) * (bar_h + gap) + 60
    colors = {16: "#3b6ea8", 64: "#8fb3dd"}

    def x(value: float) -> float:
        return label_w + plot_w * value / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">Keel req/s next to the database\'s own ceiling ({html.escape(result["date"])})</text>',
        f'<text x="10" y="36" fill="#555">wrk -t{result["method"]["threads"]}, {result["method"]["duration_s"]} s per run; '
        'dark bars 16 connections, light bars 64; dashed lines: pgbench on the same server</text>',
    ]
    for i, r in enumerate(runs):
        y = head + i * (bar_h + gap)
        label = f'{r["label"]} -c{r["connections"]}'
        if len(result["catalog_sizes"]) > 1 and r["name"].startswith("product"):
            label += f' ({compact(r["products"])} products)'
        color = colors.get(r["connections"], "#6b8fbf")
        out.append(f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{max(x(r["req_per_s"]) - label_w, 1):.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{x(r["req_per_s"]) + 5:.1f}" y="{y + 13}">{r["req_per_s"]:,.0f}</text>')
    bottom = head + len(runs) * (bar_h + gap)
    styles = {"select_only": "#c0392b", "tpcb_like": "#7f8c8d"}
    for j, (label, tps, name) in enumerate(ceilings):
        cx = x(tps)
        color = styles.get(name, "#c0392b")
        out.append(f'<line x1="{cx:.1f}" y1="{head - 4}" x2="{cx:.1f}" y2="{bottom}" stroke="{color}" stroke-width="1.5" stroke-dasharray="5,3"/>')
        out.append(f'<text x="{min(cx, width - 10):.1f}" y="{bottom + 16 + 14 * j}" text-anchor="end" fill="{color}">'
                   f'{html.escape(label)}: {tps:,.0f} TPS</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def target_lines(result: dict) -> list[str]:
    """Issue 15's targets, each met or not, from this run's figures alone."""
    runs = result["runs"]

    def run_of(name: str, connections: int | None = None, products: int | None = None) -> dict | None:
        return next((r for r in runs if r["name"] == name
                     and (connections is None or r["connections"] == connections)
                     and (products is None or r["products"] == products)), None)

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "**not met**")

    rows = []
    conns = sorted({r["connections"] for r in runs if r["name"] == "users_me"})
    for c in conns:
        me, peer = run_of("users_me", c), run_of("peer_read", c)
        ceiling = next((p for p in result["pgbench"] if p["name"] == "select_only" and p["clients"] == c), None)
        if peer:
            ratio = me["req_per_s"] / peer["req_per_s"]
            rows.append((f"`GET /users/me` ≥ 2× {peer['label'].split(':')[0]} at {c} connections",
                         f"{me['req_per_s']:,.0f} vs {peer['req_per_s']:,.0f} req/s: {ratio:.2f}×", verdict(ratio >= 2)))
        if ceiling:
            share = me["req_per_s"] / ceiling["tps"]
            rows.append((f"`GET /users/me` toward 50 % of `pgbench -S` at {c} connections",
                         f"{me['req_per_s']:,.0f} vs {ceiling['tps']:,.0f}: {share:.0%}", verdict(share >= 0.5)))
    reads = [r for r in runs if r["connections"] == max(conns, default=0) and r["method"] == "GET" and not r["peer"]]
    if reads:
        worst = max(reads, key=lambda r: r["latency_ms"]["p99"] or 0)
        rows.append((f"p99 under 10 ms for reads at {worst['connections']} connections",
                     f"worst {worst['label']} ({worst['products']:,} products): {fmt_ms(worst['latency_ms']['p99'])} ms",
                     verdict((worst["latency_ms"]["p99"] or 0) < 10)))
    s = result["server"]
    rows.append(("idle RSS under 25 MiB", f"{s['idle_rss_mib']} MiB", verdict(s["idle_rss_mib"] < 25)))
    rows.append(("start to ready under 100 ms", f"{s['start_to_ready_ms']} ms", verdict(s["start_to_ready_ms"] < 100)))
    sizes = result["catalog_sizes"]
    if len(sizes) > 1:
        for name, label in (("products_list", "list"), ("products_search", "broad search")):
            small, large = run_of(name, conns[0] if conns else None, sizes[0]), run_of(name, conns[0] if conns else None, sizes[-1])
            if small and large and small["latency_ms"]["p50"] and large["latency_ms"]["p50"]:
                growth = large["latency_ms"]["p50"] / small["latency_ms"]["p50"]
                rows.append((f"{label} p50 grows at most 1.5× from {sizes[0]:,} to {sizes[-1]:,} products",
                             f"{fmt_ms(small['latency_ms']['p50'])} → {fmt_ms(large['latency_ms']['p50'])} ms: {growth:.2f}×",
                             verdict(growth <= 1.5)))
    login = run_of("auth_login")
    raw = next((b for b in result["micro"] if b["group"] == "password" and "_all_" in (b["function"] or "")), None)
    if login and raw:
        share = login["req_per_s"] / raw["per_second"]
        rows.append(("logins ≥ 90 % of the raw argon2id rate on all cores",
                     f"{login['req_per_s']:,.1f}/s vs {raw['per_second']:,.1f}/s: {share:.0%}", verdict(share >= 0.9)))
    if login and "health_live_probe" in login:
        p99 = login["health_live_probe"]["latency_ms"]["p99"]
        rows.append(("`/health/live` p99 under 10 ms during the login flood", f"{fmt_ms(p99)} ms", verdict((p99 or 0) < 10)))
    if not rows:
        return []
    return ["## Targets", "", "Issue 15's targets against this run's own figures (the production configuration).", "",
            "| target | this run | |", "| --- | --- | --- |", *(f"| {a} | {b} | {c} |" for a, b, c in rows), ""]


def markdown(result: dict, json_name: str) -> str:
    m = result["machine"]
    load = result["load_average"]
    cores = m["cores"] or 1
    # A peer's own database is not this run's PostgreSQL: its CPU shows as other, by design.
    others = [r["cpu_cores"]["other"] for r in result["runs"] + result["pgbench"]
              if r["cpu_cores"]["other"] is not None and not r.get("peer")]
    other_mean = sum(others) / len(others) if others else 0.0
    other_max = max(others, default=0.0)
    loads = [load["start"][0], load["end"][0], *load.get("before_micro", [])[:1]]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (tools/bench.py) from "
        f"bench/results/{json_name}; edit the script, not this file. -->",
        "",
        f"Latest run: **{result['date']}**, commit `{result['git']['commit'][:12]}`"
        + (" (with uncommitted changes)" if result["git"]["dirty"] else "")
        + f", {result['elapsed_s'] / 60:.1f} minutes for the whole run. "
        f"Raw figures: [`bench/results/{json_name}`](../bench/results/{json_name}); earlier runs sit beside it.",
        "",
        "These are measurements of one machine at one moment, not guarantees, and nothing asserts them "
        "(tests never time anything). Compare runs from the same machine only.",
        "",
    ]
    # What the runs themselves saw decides; the load average only lags behind (a build that
    # starts as the run ends lifts the final figure without having taken anything from it).
    if other_mean > 0.25 or other_max > 0.5:
        lines += [
            f"> **The machine was busy**: processes outside this benchmark used {other_mean:.2f} of the {cores} cores "
            f"on average during the measured runs (*other CPU* below, up to {other_max:.2f}); load average "
            f"{load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end. Other work (builds) shared the "
            "cores with this run, so its figures are lower, and its latencies longer, than an idle machine gives.",
            "",
        ]
    elif max(loads) > 0.5 * cores:
        lines += [
            f"> The load average reached {max(loads):.2f} on {cores} cores, but it counts this benchmark's own "
            "runnable processes too (at 64 connections, 64 database backends), and during the measured runs "
            f"processes outside the benchmark used only {other_mean:.2f} cores on average (at most {other_max:.2f}; "
            "*other CPU* below): the figures are those of an otherwise quiet machine.",
            "",
        ]
    lines += target_lines(result)
    lines += [
        "## Machine",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| CPU | {m['cpu_model']}, {cores} cores |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| kernel | Linux {m['kernel']}{', ' + m['os'] if m.get('os') else ''} |",
        f"| load average (1 min) | "
        + (f"{load['before_micro'][0]:.2f} before the micro-benchmarks, " if load.get("before_micro") else "")
        + f"{load['start'][0]:.2f} at the start of the load runs, {load['end'][0]:.2f} at the end |",
        f"| PostgreSQL | {result['postgres']['version']} in Docker ({result['postgres']['image']}), reached at the container's address |",
        f"| load generator | {result['method']['tool']}; pgbench: {result['pgbench_tool']} |",
        "",
        "![req/s per endpoint next to the pgbench ceiling](benchmarks.svg)",
        "",
        "## Endpoints",
        "",
        f"`wrk -t{result['method']['threads']} -cN -d{result['method']['duration_s']}s --latency` per row after a "
        f"{result['method']['warmup_s']} s warm-up. *Server CPU* is the `keel` process's utime + stime over the "
        "run divided by its wall time (cores busy); *µs/req* the same CPU per request; *PostgreSQL CPU* the "
        "database container's cgroup; *other CPU* whatever else the machine ran meanwhile (all busy CPU less the "
        "server, PostgreSQL, wrk and this driver: other people's builds on a shared machine, and kernel network work "
        "charged to no process). *Errors* are by status as the server logged them. *of pgbench -S* "
        "compares with the select-only ceiling at the same client count: one indexed read per transaction, no HTTP, no auth.",
        "",
        "| endpoint | conns | products | req/s | p50 ms | p99 ms | errors | server CPU | µs/req | RSS MiB | PostgreSQL CPU | other CPU | of pgbench -S |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["runs"]:
        cap = ceiling(result, r["connections"])
        share = f"{r['req_per_s'] / cap:.0%}" if cap else "–"
        name = f"{r['label'].split(':')[0]}: `{r['method']} {r['path']}`" if r.get("peer") else f"`{r['method']} {r['path']}`"
        products = "—" if r.get("peer") else f"{r['products']:,}"
        lines.append(
            f"| {name} | {r['connections']} | {products} | {fmt_int(r['req_per_s'])} | "
            f"{fmt_ms(r['latency_ms']['p50'])} | {fmt_ms(r['latency_ms']['p99'])} | {fmt_errors(r)} | "
            f"{fmt_cores(r['cpu_cores']['server'])} | {fmt_int(r['server']['cpu_us_per_request'])} | {r['server']['rss_mib']} | "
            f"{fmt_cores(r['cpu_cores']['postgres'])} | {fmt_cores(r['cpu_cores']['other'])} | {share} |"
        )
    lines += [
        "",
        "## The database's own ceiling",
        "",
        f"pgbench against the same server, scale {PGBENCH_SCALE} ({PGBENCH_SCALE * 100_000:,} accounts), "
        "prepared statements, one run each after a warm-up of the same length as above.",
        "",
        "| run | clients | TPS | latency average ms | PostgreSQL CPU | pgbench CPU | other CPU | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in result["pgbench"]:
        c = p["cpu_cores"]
        lines.append(
            f"| `pgbench {p['options']}` | {p['clients']} | {fmt_int(p['tps'])} | {fmt_ms(p['latency_avg_ms'])} | "
            f"{fmt_cores(c['postgres'])} | {fmt_cores(c['load_generator'])} | {fmt_cores(c['other'])} | {p['failed_transactions']} |"
        )
    s = result["server"]
    lines += [
        "",
        "## The server process",
        "",
        "| what | figure |",
        "| --- | --- |",
        f"| start to `/health/ready` = 200 (migrations already applied) | {s['start_to_ready_ms']} ms |",
        f"| idle RSS after start | {s['idle_rss_mib']} MiB |",
        f"| RSS at the end, peak RSS | {s['final_rss_mib']} MiB, {s['peak_rss_mib']} MiB |",
        f"| JSON log lines written | {s['log_lines']:,} |",
        f"| OTLP exports received by the sink | {sum(result['telemetry_sink']['requests'].values()):,} "
        f"({result['telemetry_sink']['bytes'] / 1024 / 1024:.1f} MiB) |",
        f"| exit code after SIGTERM | {s['exit_code']} |",
    ]
    login = next((r for r in result["runs"] if r["name"] == "auth_login"), None)
    micro = result["micro"]
    if micro:
        lines += [
            "",
            "## Micro-benchmarks (criterion)",
            "",
            "`cargo bench -p keel` (app/benches), the release profile; mean time per iteration and its 95 % "
            "confidence interval. One iteration of an `_all_N_cores` benchmark runs N hashes at once.",
            "",
            "| benchmark | mean | 95 % CI | per second |",
            "| --- | --- | --- | --- |",
        ]
        for b in micro:
            lines.append(
                f"| `{b['id']}` | {fmt_duration_ns(b['mean_ns'])} | {fmt_duration_ns(b['ci95_ns'][0])} – {fmt_duration_ns(b['ci95_ns'][1])} | "
                f"{fmt_rate(b['per_second'])} |"
            )
        raw_all = next((b for b in micro if b["group"] == "password" and "_all_" in (b["function"] or "")), None)
        raw_one = next((b for b in micro if b["group"] == "password" and "_all_" not in (b["function"] or "")), None)
        if login and raw_one:
            lines += ["", f"Logins: {login['req_per_s']:,.1f}/s at {login['connections']} connections, against a raw argon2id "
                      f"rate of {raw_one['per_second']:.1f} hashes/s on one core"
                      + (f" and {raw_all['per_second']:.1f}/s on all {raw_all['elements_per_iteration']} cores "
                         f"({login['req_per_s'] / raw_all['per_second']:.0%} of it)" if raw_all else "")
                      + ". Each login is one argon2id verification plus a session and a refresh-token insert; the "
                      "criterion figures were taken minutes earlier, so on a busy machine the two may have seen "
                      "different shares of the cores."]
    if login and "health_live_probe" in login:
        probe = login["health_live_probe"]
        lines += ["", f"During the login run one more client polled `/health/live`: p50 {fmt_ms(probe['latency_ms']['p50'])} ms, "
                  f"p99 {fmt_ms(probe['latency_ms']['p99'])} ms, {probe['req_per_s']:,.0f} req/s."]
    sizes = result["catalog_sizes"]
    catalog = f"{sizes[0]:,} products" + "".join(
        f", grown to {size:,} for a second round of the catalog rows" for size in sizes[1:]
    )
    lines += [
        "",
        "## Method",
        "",
        "`make bench` (scripts/bench.sh, then tools/bench.py) does every step; `make bench-quick` is a shorter "
        "smoke run (fewer endpoints, 3 s runs, no micro-benchmarks) that leaves this file alone.",
        "",
        "1. Runs the criterion micro-benchmarks (`cargo bench -p keel`, the release profile) before any load, then "
        "builds the release binary exactly as the production image does (`cargo build --release --bin keel`).",
        f"2. Starts a throwaway PostgreSQL container from the project's image with "
        + ", ".join(f"`{k}={v}`" for k, v in result["postgres"]["settings"].items())
        + " and otherwise default (durable) settings, its data directory on a Docker volume (the host's filesystem, "
        f"not the storage driver's {result['postgres'].get('storage_driver', '')} layer), and connects to the "
        "container's own address: Docker's userland port proxy would cost a third of a core at these rates.",
        f"3. `keel migrate`, then seeds with SQL `generate_series`: {catalog} "
        f"(stock 10⁹ each, names such that `q={BROAD_QUERY}` matches 1 in 16), {USERS:,} users sharing one "
        f"argon2id hash made by `keel users create-admin`, {ORDERS:,} orders of two lines; `VACUUM ANALYZE`. "
        f"`pgbench -i -s {PGBENCH_SCALE}` in a database of its own on the same server.",
        "4. Starts `keel serve` with `APP_ENV=production`: JSON logs at `info` to a file, traces and metrics exported "
        "over OTLP/HTTP to a sink on loopback that discards them, the built-in worker on, the production pool. "
        "What production insists on is supplied as an operator would: a fresh Ed25519 signing key (openssl), a "
        "webhook encryption key, the database URL; `database.require_verified_tls=false` (no TLS in the container), "
        "email off (no SMTP server), the listener on 127.0.0.1. The login limits stay as configured: "
        "every wrk client shares one address, but successful logins, and attempts wrk abandons at the end of a run, "
        "are taken back.",
        "5. For each row: a warm-up run, then a measured run. `GET /products/{id}` and `POST /orders` cycle through "
        f"{HOT_PRODUCTS:,} products (one line, quantity 1, a member's token); `POST /auth/login` cycles through the "
        f"{USERS:,} users; `GET /users/me` uses one valid member token, fresh for each run. The server's CPU comes "
        "from /proc/PID/stat, PostgreSQL's from its container's cgroup, RSS from /proc/PID/status at the end of the run.",
        "6. pgbench `-S` (select-only) at both client counts and the TPC-B-like default at 16, `-M prepared`, "
        "from the host (the same path to the database as the service) or, without a host pgbench, inside the container.",
        "",
        "Load generator, server and database share the same cores, as they do on a developer's machine; the "
        "pgbench ceiling is measured the same way, so the comparison is like for like.",
        "",
    ]
    peers = [r for r in result["runs"] if r.get("peer")]
    if peers:
        lines += [
            f"The peer ({peers[0]['label'].split(':')[0]}) was built and started by hand before the run "
            "(BENCH_PEER_URL, BENCH_PEER_HEADER, BENCH_PEER_PID; nothing of it is in this repository) and measured "
            "with the same wrk settings right after `GET /users/me` at each client count. It runs on a database "
            "of its own on the same machine, whose CPU appears as *other CPU* in its rows.",
            "",
        ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------- main ----


def usage() -> str:
    return (
        "tools/bench.py --render bench/results/DATE.json rewrites docs/benchmarks.{md,svg} from a stored result.\n"
        "environment: KEEL_BIN (required), BENCH_PG_IMAGE (required), BENCH_PRODUCTS (catalog sizes, "
        "e.g. '10000 1000000'; default 10000), BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3), "
        "BENCH_CONNECTIONS (16), BENCH_READ_CONNECTIONS (64), BENCH_THREADS (2), BENCH_QUICK, "
        "BENCH_CRITERION_DIR, BENCH_STARTED (unix time; criterion results older than it are ignored)"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        print(usage())
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # After a change to the report itself: rewrite docs/ from a stored result, no new run.
        path = Path(sys.argv[2]).resolve()
        result = json.loads(path.read_text())
        (ROOT / "docs" / "benchmarks.svg").write_text(chart_svg(result))
        (ROOT / "docs" / "benchmarks.md").write_text(markdown(result, path.name))
        log(f"rendered docs/benchmarks.md and docs/benchmarks.svg from {path.name}")
        return 0
    started_wall = time.time()
    started = float(os.environ.get("BENCH_STARTED") or started_wall)
    options = Options()

    # SIGTERM (make interrupted, CI timeout) unwinds through the finally blocks like Ctrl-C.
    def terminate(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)

    result: dict = {
        "date": dt.date.today().isoformat(),
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": options.quick,
        "git": git_info(),
        "machine": machine_info(),
        "load_average": {"start": load_average(), **loadavg_before_micro()},
        "method": {
            "tool": tool_version(["wrk", "-v"]).split(" Copyright")[0],
            "threads": options.threads,
            "connections": sorted({options.connections, options.read_connections}),
            "warmup_s": options.warmup,
            "duration_s": options.duration,
        },
        "config": {
            "app_env": "production",
            "log_format": "json",
            "log_filter": "info",
            "telemetry": "OTLP/HTTP export of traces and metrics to a discarding sink on 127.0.0.1",
        },
        "catalog_sizes": options.products,
    }
    postgres = Postgres(options.pg_image)
    sink = OtlpSink()
    keel: Keel | None = None
    workdir = Path(tempfile.mkdtemp(prefix="keel-bench-"))
    try:
        log(f"starting PostgreSQL ({options.pg_image})")
        postgres.start()
        result["postgres"] = {
            "image": options.pg_image,
            "version": postgres.version(),
            "settings": Postgres.SETTINGS,
            "data_directory": "an anonymous Docker volume",
            "storage_driver": tool_version(["docker", "info", "--format", "{{.Driver}}"]),
        }
        sink.start()
        keel = Keel(options.keel, postgres.url(), sink.port, workdir)
        result["keel_version"] = keel.command("--version")
        keel.command("migrate")
        log(f"seeding {options.products[0]:,} products, {USERS:,} users, {ORDERS:,} orders")
        keel.command("users", "create-admin", "--email", "admin@bench.test", stdin=PASSWORD + "\n")
        postgres.psql(products_sql(1, options.products[0]))
        postgres.psql(people_and_orders_sql())
        pgbench = PgBench(options, postgres)
        pgbench.initialise()
        result["pgbench_tool"] = pgbench.version + (" on the host" if pgbench.on_host else " inside the container")

        log("starting keel serve (APP_ENV=production)")
        ready_ms = keel.start()
        time.sleep(1)
        idle = process_memory_kib(keel.pid)
        log(f"ready after {ready_ms} ms, idle RSS {mib(idle['VmRSS'])} MiB")

        load = Load(options, keel, postgres, workdir)
        load.prepare_scripts()
        runs = load.service_runs()
        runs += load.catalog_runs(options.products[0], first=True)
        result["pgbench"] = pgbench.runs()
        for size, previous in zip(options.products[1:], options.products):
            log(f"growing the catalog to {size:,} products")
            grow_started = time.perf_counter()
            postgres.psql(products_sql(previous + 1, size))
            log(f"  {time.perf_counter() - grow_started:.0f} s")
            runs += load.catalog_runs(size, first=False)
        result["runs"] = runs

        memory = process_memory_kib(keel.pid)
        result["server"] = {
            "start_to_ready_ms": ready_ms,
            "idle_rss_mib": mib(idle["VmRSS"]),
            "final_rss_mib": mib(memory["VmRSS"]),
            "peak_rss_mib": mib(memory["VmHWM"]),
        }
        result["server"]["exit_code"] = keel.stop()
        result["server"]["log_lines"] = keel.log_lines()
        result["telemetry_sink"] = sink.summary()
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except BenchError as err:
        log(f"error: {err}")
        if keel is not None and keel.process is not None:
            log(f"keel log: {keel.log_tail()}")
        return 1
    finally:
        if keel is not None:
            keel.stop()
        sink.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    result["micro"] = criterion_results(options.criterion_dir, started) if not options.quick else []
    result["load_average"]["end"] = load_average()
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result["elapsed_s"] = round(time.time() - started, 1)

    if options.quick:
        path = Path(tempfile.gettempdir()) / "keel-bench-quick.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(markdown(result, path.name))
        log(f"quick run: {path} (docs/benchmarks.md left alone)")
        return 0
    options.results_dir.mkdir(parents=True, exist_ok=True)
    name = f"{result['date']}.json"
    path = options.results_dir / name
    if path.exists():  # a second run on the same day keeps the first
        name = f"{result['date']}-{dt.datetime.now().strftime('%H%M')}.json"
        path = options.results_dir / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    options.chart.write_text(chart_svg(result))
    options.docs.write_text(markdown(result, name))
    log(f"wrote {path.relative_to(ROOT)}, {options.docs.relative_to(ROOT)} and {options.chart.relative_to(ROOT)} "
        f"in {result['elapsed_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as err:
        log(f"error: {err}")
        sys.exit(1)
