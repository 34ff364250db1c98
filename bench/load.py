"""Load benchmark: N concurrent clients submit reports over HTTP to gunicorn on loopback, against
PostgreSQL and Redis, with a Celery worker paging through the Twilio sandbox.

    python bench/load.py [--clients 50] [--seconds 60] [--warmup 5] [--urgent-share 0.2]
                         [--rate 0] [--web-workers 1] [--web-threads 16]

Each client is one keep-alive HTTP/1.1 connection (as a phone app would hold) sending one
report after another; with --rate R the clients together offer R reports a second on a fixed
schedule instead, and each latency counts from the moment its report was due, so a server that
falls behind is not excused by the clients waiting for it. The same clients first send
reports for --warmup seconds, which are not timed: a server just started opens its database
connections, prepares its statements and loads its code on its first requests. Prints requests
per second and latency over the timed run, then checks that every 201 has its case in the
database and every urgent one its page at the sandbox (the warm-up's reports too, and a 5xx in
either counts), and that the audit chains verify (manage.py verify_audit). The last line is
exactly:

    load reports_per_s=<n> p50_ms=<n> p99_ms=<n> errors_5xx=<n> lost=<n>

Before that last line it prints the CPU time each part spent per created report, read from
/proc over the clients' run: the web server, the Celery worker (with the paging sandbox in
this process), PostgreSQL's backends for the scratch database, and the client threads.

Uses a scratch database (BENCH_DB, default concernline_bench, recreated), the Redis database
BENCH_REDIS (default 8) as broker and BENCH_CACHE_REDIS (default 7) for the rate-limit counters,
both flushed.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "concernline_bench")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/8")
CACHE_REDIS = os.environ.get("BENCH_CACHE_REDIS", "redis://127.0.0.1:6379/7")
ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "bench-auth-token"
FROM_NUMBER = "+447700900000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(*, web_url: str, sandbox_url: str, var_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-for-deployment-0123456789abcdef",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": REDIS,
        "CACHE_URL": CACHE_REDIS,
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": sandbox_url,
        "PUBLIC_BASE_URL": web_url,
        "VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        # One benchmark client per worker account; the address limit would stop a load test
        # from one machine, which is what it is for in production.
        "RATE_LIMIT_REPORTS_PER_PERSON": "100000",
        "RATE_LIMIT_REPORTS_PER_ADDRESS": "1000000",
        "RATE_LIMIT_API_PER_PERSON": "100000",
        "RATE_LIMIT_API_PER_ADDRESS": "1000000",
    }


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and all its descendants, the reaped ones included."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields:
            # utime, stime, and those of children already waited for.
            total += sum(int(f) for f in fields[11:15])
        todo.extend(children.get(pid, []))
    return total / TICK


class PostgresMeter:
    """CPU time of PostgreSQL's backends for the scratch database over a span. Sampled every
    half second, so a backend that ends within the span (a connection past its maximum age)
    still counts up to its last sample, and one that starts counts from its start."""

    def __init__(self) -> None:
        import psycopg

        self._conn = psycopg.connect(f"{PG}/postgres", autocommit=True)
        self.first = self._sample()
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> dict[int, float]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [DB_NAME]
        ).fetchall()
        seconds = {}
        for (pid,) in rows:
            if fields := _stat(pid):
                seconds[pid] = sum(int(f) for f in fields[11:13]) / TICK
        return seconds

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.last.update(self._sample())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.last.update(self._sample())
        self._conn.close()
        return sum(seconds - self.first.get(pid, 0.0) for pid, seconds in self.last.items())


def prepare(env: dict[str, str], clients: int) -> list[str]:
    """Recreate the scratch database, migrate, seed people and a rota; return API tokens."""
    import psycopg
    import redis

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    redis.Redis.from_url(REDIS).flushdb()
    redis.Redis.from_url(env["CACHE_URL"]).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    script = f"""
import json
from datetime import timedelta
from django.utils import timezone
from staff.services import issue_api_token
from oncall.models import LayerMember, Rota, RotaLayer
from staff.models import Role, User
m = User.objects.create_user(email="oncall@bench.example", password="x" * 16,
    full_name="On Call", role=Role.MANAGER, phone="+447700900101")
today = timezone.localdate()
rota = Rota.objects.create(name="Bench", is_default=True)
layer = RotaLayer.objects.create(rota=rota, name="All hours",
    start_date=today - timedelta(days=today.weekday() + 7), handoff_every=7)
LayerMember.objects.create(layer=layer, person=m, position=0)
tokens = []
for n in range({clients}):
    u = User.objects.create_user(email=f"worker{{n}}@bench.example", password="x" * 16,
        full_name=f"Worker {{n}}", role=Role.CARE_WORKER)
    tokens.append(issue_api_token(user=u, name='bench')[1])
print(json.dumps(tokens))
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_clients(*, url: str, tokens: list[str], seconds: float, urgent_share: float, rate: float):
    """Each client on its own thread and keep-alive connection. The client side stays light
    (http.client, not a full HTTP library): it shares the two cores with what it measures."""
    results = []  # (status, latency_s, reference or None, urgent)
    client_cpu = []  # CPU seconds each client thread spent
    lock = threading.Lock()
    parts = urlsplit(url)
    stop_at = time.monotonic() + seconds
    interval = len(tokens) / rate if rate else 0.0

    def client(token: str) -> None:
        cpu_started = time.thread_time()
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        rng = random.Random(token)
        connection = None
        due = time.monotonic() + rng.random() * interval
        while True:
            if interval:
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
            if time.monotonic() >= stop_at:
                break
            urgent = rng.random() < urgent_share
            body = json.dumps(
                {
                    "kind": "urgent_disclosure" if urgent else "concern_colleague",
                    "narrative": "Benchmark report text that never leaves the database.",
                    "grounds": ["crime"] if urgent else [],
                    **({} if urgent else {"colleague": "B. Staff"}),
                    "client_token": str(uuid.uuid4()),
                }
            ).encode()
            # Paced, a report's latency counts from when it was due, however late it left.
            started = min(due, time.monotonic()) if interval else time.monotonic()
            status, reference = 599, None
            # A kept-alive connection the server has closed fails before any answer; the
            # report carries its client_token, so sending it again on a new connection is
            # safe (a case already opened is returned, not opened twice).
            for attempt in (1, 2):
                reused = connection is not None
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection(
                            parts.hostname, parts.port, timeout=30
                        )
                    connection.request("POST", parts.path, body, headers)
                    response = connection.getresponse()
                    data = response.read()
                    status = response.status
                    if status == 201:
                        reference = json.loads(data).get("reference")
                    if response.will_close:
                        connection.close()
                        connection = None
                    break
                except (OSError, http.client.HTTPException):
                    if connection is not None:
                        connection.close()
                    connection = None
                    if not (reused and attempt == 1):
                        break
            latency = time.monotonic() - started
            with lock:
                results.append((status, latency, reference, urgent))
            due += interval
        if connection is not None:
            connection.close()
        with lock:
            client_cpu.append(time.thread_time() - cpu_started)

    threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, sum(client_cpu)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--urgent-share", type=float, default=0.2)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="reports a second the clients offer together, on a schedule (0: each client "
        "sends its next report as soon as the last is answered)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=5,
        help="seconds of the same load before the timed run, not timed (0: none)",
    )
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument(
        "--web-threads",
        type=int,
        default=16,
        help="threads per worker (more than 1: gthread, keeping connections alive; 1: sync)",
    )
    args = parser.parse_args()

    from notifications.sandbox import start_sandbox

    var_dir = tempfile.mkdtemp(prefix="concernline-bench-")
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    sandbox, _thread = start_sandbox(
        port=0,
        app_url=web_url,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=FROM_NUMBER,
        auto_deliver=False,
    )
    env = environment(web_url=web_url, sandbox_url=sandbox.url, var_dir=var_dir)
    processes = []
    try:
        print(f"preparing {args.clients} clients …", flush=True)
        tokens = prepare(env, args.clients)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                # The production settings (gunicorn.conf.py), with the sizes asked for.
                env={
                    **env,
                    "WEB_BIND": f"127.0.0.1:{web_port}",
                    "WEB_CONCURRENCY": str(args.web_workers),
                    "WEB_THREADS": str(args.web_threads),
                },
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-B",
                    "-Q",
                    "paging,default",
                    # As docker-compose.yml runs it.
                    "--pool",
                    "threads",
                    "--concurrency",
                    "16",
                    "--loglevel",
                    "WARNING",
                    "-s",
                    f"{var_dir}/beat",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        for _ in range(100):
            try:
                requests.get(f"{web_url}/accounts/login/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        offered = f", offering {args.rate:g} reports/s" if args.rate else ""
        print(
            f"{args.clients} clients for {args.seconds:.0f} s against {web_url}{offered} …",
            flush=True,
        )

        def load(seconds: float):
            return run_clients(
                url=f"{web_url}/api/v1/reports/",
                tokens=tokens,
                seconds=seconds,
                urgent_share=args.urgent_share,
                rate=args.rate,
            )

        warmup = []
        if args.warmup > 0:
            warmup, _cpu = load(args.warmup)
            print(f"warm-up: {len(warmup)} reports in {args.warmup:g} s, not timed", flush=True)
        web, worker = processes[0].pid, processes[1].pid
        cpu_before = {
            "web": tree_cpu_seconds(web),
            "worker": tree_cpu_seconds(worker),
            "bench": time.process_time(),
        }
        postgres = PostgresMeter()
        started = time.monotonic()
        results, clients_cpu = load(args.seconds)
        elapsed = time.monotonic() - started
        cpu = {
            "web": tree_cpu_seconds(web) - cpu_before["web"],
            "worker": tree_cpu_seconds(worker) - cpu_before["worker"],
            "postgres": postgres.stop(),
            "clients": clients_cpu,
            # The bench process beside its clients: the sandbox taking pages, the sampler.
            "sandbox": time.process_time() - cpu_before["bench"] - clients_cpu,
        }

        created = [r for r in results if r[0] == 201]
        errors_5xx = sum(1 for r in results + warmup if r[0] >= 500)
        other = sum(1 for r in results if r[0] != 201 and r[0] < 500)
        latencies_ms = [r[1] * 1000 for r in results]
        print(
            f"requests={len(results)} created={len(created)} other_4xx={other} "
            f"errors_5xx={errors_5xx} mean_ms={statistics.fmean(latencies_ms):.1f} "
            f"p90_ms={percentile(latencies_ms, 90):.0f} p95_ms={percentile(latencies_ms, 95):.0f} "
            f"max_ms={max(latencies_ms):.0f}",
            flush=True,
        )

        per_report = {name: 1000 * seconds / max(1, len(created)) for name, seconds in cpu.items()}
        print(
            "cpu_ms_per_report "
            + " ".join(f"{name}={ms:.2f}" for name, ms in per_report.items())
            + f" total={sum(per_report.values()):.2f}",
            flush=True,
        )
        lost = count_lost(env, created + [r for r in warmup if r[0] == 201], sandbox)
        audit = subprocess.run(
            [sys.executable, "manage.py", "verify_audit"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"verify_audit: {(audit.stdout + audit.stderr).strip()}", flush=True)
        print(
            f"load reports_per_s={len(created) / elapsed:.0f} "
            f"p50_ms={percentile(latencies_ms, 50):.0f} p99_ms={percentile(latencies_ms, 99):.0f} "
            f"errors_5xx={errors_5xx} lost={lost}",
            flush=True,
        )
        return 0 if audit.returncode == 0 else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def count_lost(env, created, sandbox) -> int:
    """Every 201 must have its case row, and every urgent one its page at the sandbox."""
    import psycopg

    references = {r[2] for r in created}
    urgent = {r[2] for r in created if r[3]}
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        stored = {row[0] for row in conn.execute("SELECT reference FROM incidents_case")}
    missing_rows = references - stored
    deadline = time.monotonic() + 60
    while True:
        paged = set()
        for message in sandbox.sandbox.list_messages():
            for reference in urgent:
                if reference in message["body"]:
                    paged.add(reference)
        if urgent <= paged or time.monotonic() > deadline:
            break
        time.sleep(1)
    missing_pages = urgent - paged
    print(
        f"rows missing={len(missing_rows)} urgent={len(urgent)} pages missing={len(missing_pages)}",
        flush=True,
    )
    return len(missing_rows) + len(missing_pages)


if __name__ == "__main__":
    sys.exit(main())
