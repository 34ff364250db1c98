"""Benchmark the escalation engine end to end (a script, not a test: pytest never collects it).

    python bench/escalation.py

It recreates a scratch PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/concernline_bench_escalation), empties a Redis database index
(BENCH_BROKER_URL, default redis://127.0.0.1:6379/13), starts the Twilio sandbox in a process
of its own, BENCH_WORKERS Celery workers (default 1) on the paging queue, each a BENCH_POOL
pool (default threads) of BENCH_CONCURRENCY (default 16), and one beat, then makes
BENCH_ALERTS urgent reports (default 200) at BENCH_RATE a second (default 20) through the real
`submit_report`, each escalated by a three-step policy (on call, then a named manager, then the
fallback, with waits of two policy minutes; a policy minute lasts BENCH_MINUTE_SECONDS, 0.5).

It prints progress and the CPU each part used an alert (workers, beat, sandbox, this process's
reports, the PostgreSQL backends of the benchmark's database); its last two lines are exactly:
    report_to_provider_ms p50=<n> p99=<n>   the report's commit -> the sandbox receiving
                                             the first SMS request for it
    step_lateness_ms p50=<n> p99=<n>         a later step's SMS request at the sandbox
                                             after that step's next_step_at
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concernline_bench_escalation"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
ALERTS = int(os.environ.get("BENCH_ALERTS", "200"))
RATE = float(os.environ.get("BENCH_RATE", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
POOL = os.environ.get("BENCH_POOL", "threads")
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
MINUTE_SECONDS = os.environ.get("BENCH_MINUTE_SECONDS", "0.5")
WARM_UP = 5  # reports made (and left out of the figures) while connections open
ACCOUNT_SID, AUTH_TOKEN, FROM = "AC" + "2" * 32, "bench-auth-token", "+447700900000"
REFERENCE = re.compile(r"case (C-\d{4}-\d{4})")

os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DEBUG="0",
    SECRET_KEY="bench-only-not-a-secret-" + "x" * 40,
    DATABASE_URL=DATABASE_URL,
    CELERY_BROKER_URL=BROKER_URL,
    LOG_LEVEL="WARNING",
)
# A key of the benchmark's own: narratives are encrypted at rest, so reports need one.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1rZXktbm90LWEtc2VjcmV0LTAwMDA=")


def say(text: str) -> None:
    print(text, flush=True)


def recreate_database() -> None:
    import psycopg

    url = urlparse(DATABASE_URL)
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], q: float) -> int:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def main() -> None:
    recreate_database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from incidents.services import submit_report
    from oncall.models import (
        EscalationPolicy,
        EscalationStep,
        LayerMember,
        Page,
        Rota,
        RotaLayer,
    )
    from staff.models import Role, User

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(BROKER_URL).flushdb()
    say(f"database {DATABASE_URL} migrated; broker {BROKER_URL} emptied")

    def person(email, role, phone, **extra):
        return User.objects.create_user(
            email=email,
            password=None,
            full_name=email.split("@")[0],
            role=role,
            phone=phone,
            **extra,
        )

    manager = person("bench.manager@example.org", Role.MANAGER, "+447700900101")
    manager2 = person("bench.manager2@example.org", Role.MANAGER, "+447700900102")
    lead = person("bench.lead@example.org", Role.SAFEGUARDING_LEAD, "+447700900303")
    worker = person(
        "bench.worker@example.org", Role.CARE_WORKER, "+447700900201", line_manager=manager
    )
    today = timezone.localdate()
    rota = Rota.objects.create(name="Bench", is_default=True)
    layer = RotaLayer.objects.create(
        rota=rota,
        name="All hours",
        start_date=today - __import__("datetime").timedelta(days=today.weekday() + 7),
        handoff_every=7,
    )
    LayerMember.objects.create(layer=layer, person=manager, position=0)
    policy = EscalationPolicy.objects.create(name="Bench urgent", category="")
    for position, step in enumerate(
        [
            {"kind": "notify_on_call"},
            {"kind": "wait", "minutes": 2},
            {"kind": "notify_person", "person": manager2},
            {"kind": "wait", "minutes": 2},
            {"kind": "fallback", "person": lead},
        ],
        start=1,
    ):
        EscalationStep.objects.create(policy=policy, position=position, **step)

    # The sandbox stands in for Twilio's cloud, so it runs in a process of its own: in this
    # one it would share the interpreter lock with the reports being made, and note each
    # request's arrival late whenever a report held the lock.
    sandbox = Sandbox()
    say(f"sandbox at {sandbox.url}")

    scratch = Path(tempfile.mkdtemp(prefix="concernline-bench-"))
    env = {
        **os.environ,
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM,
        "TWILIO_API_URL": sandbox.url,
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "ESCALATION_MINUTE_SECONDS": MINUTE_SECONDS,
        "ESCALATION_REVIEW_MINUTES": "0",
        "VAR_DIR": str(scratch),
        # Workers keep their database connection (production should too): opening one per
        # task costs more than the whole step.
        "DATABASE_CONN_MAX_AGE": os.environ.get("BENCH_CONN_MAX_AGE", "60"),
    }
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    processes = [
        subprocess.Popen(
            [
                *celery,
                "worker",
                "-Q",
                "paging,default",
                "--pool",
                POOL,
                "--concurrency",
                str(CONCURRENCY),
                # A prefork parent hands a task only to a child that is free (no-op for threads).
                "-O",
                "fair",
                "-n",
                f"bench{i}@%h",
                "--loglevel",
                os.environ.get("BENCH_WORKER_LOG", "WARNING"),
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(scratch / f"w{i}.log", "w"),  # noqa: SIM115
        )
        for i in range(WORKERS)
    ]
    processes.append(
        subprocess.Popen(
            [*celery, "beat", "-s", str(scratch / "beat-schedule"), "--loglevel", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(scratch / "beat.log", "w"),  # noqa: SIM115
        )
    )
    try:
        from config.celery import app

        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < WORKERS:
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not start; see {scratch}")
        say(f"{WORKERS} workers and beat running (logs in {scratch})")

        committed: dict[str, float] = {}

        def report(index: int) -> None:
            mark = {}
            with transaction.atomic():
                # Registered first, so it runs first after the commit: the commit's moment.
                transaction.on_commit(lambda: mark.setdefault("at", time.time()))
                case = submit_report(
                    reporter=worker,
                    kind="urgent_disclosure",
                    narrative=f"bench report {index}",
                    grounds=["crime"],
                )
            committed[case.reference] = mark["at"]

        for index in range(WARM_UP):
            report(-index)
        warm = set(committed)
        time.sleep(1)
        cpu_at_start = cpu_use(processes, sandbox)
        say(f"raising {ALERTS} alerts at {RATE:g} a second")
        start = time.monotonic()
        for index in range(ALERTS):
            pause = start + index / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            report(index)
            if (index + 1) % 50 == 0:
                say(f"  {index + 1} raised")
        raising = time.monotonic() - start
        # Each report takes CPU here too: on a busy machine the pace may fall below BENCH_RATE.
        say(f"raised {ALERTS} in {raising:.1f} s: {ALERTS / raising:.1f} a second")
        total = ALERTS + WARM_UP
        deadline = time.monotonic() + 120
        while len(sandbox.messages(to=str(lead.phone))) < total:
            if time.monotonic() > deadline:
                raise SystemExit("not every alert reached its fallback within 120 s")
            time.sleep(0.5)
        busy = time.monotonic() - start
        messages = sandbox.messages()
        say(f"every alert reached its fallback; {len(messages)} SMS sent")
        cpu = cpu_use(processes, sandbox)
        say(
            f"CPU in {busy:.1f} s, ms an alert: "
            + ", ".join(
                f"{k} {(v - cpu_at_start.get(k, 0)) * 1000 / ALERTS:.1f}" for k, v in cpu.items()
            )
        )

        requests: dict[tuple[str, str], list[float]] = {}
        for message in messages:
            ref = REFERENCE.search(message["body"]).group(1)
            requests.setdefault((ref, message["to"]), []).append(message["request_received_at"])
        duplicates = sum(len(times) - 1 for times in requests.values())
        say(f"duplicate pages: {duplicates}")

        first_page = [
            (min(requests[(ref, str(manager.phone))]) - at) * 1000
            for ref, at in committed.items()
            if ref not in warm
        ]
        later = Page.objects.filter(step__in=[2, 4]).values_list(
            "alert__reference", "recipient__phone", "due_at"
        )
        lateness = [
            (min(requests[(ref, str(phone))]) - due.timestamp()) * 1000
            for ref, phone, due in later
            if ref not in warm
        ]
        say(
            f"measured {len(first_page)} first pages and {len(lateness)} later steps; "
            f"mean report_to_provider {statistics.mean(first_page):.1f} ms"
        )
        print(
            f"report_to_provider_ms p50={percentile(first_page, 0.5)} "
            f"p99={percentile(first_page, 0.99)}"
        )
        print(f"step_lateness_ms p50={percentile(lateness, 0.5)} p99={percentile(lateness, 0.99)}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()


def cpu_use(processes: list, sandbox: "Sandbox") -> dict[str, float]:
    """CPU seconds used so far by each part: the workers, beat, the sandbox, this process (the
    reports) and the PostgreSQL backends serving the benchmark's database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        backends = [pid for (pid,) in cursor.fetchall()]
    return {
        "workers": sum(cpu_seconds(p.pid) for p in processes[:WORKERS]),
        "beat": cpu_seconds(processes[-1].pid),
        "sandbox": cpu_seconds(sandbox.process.pid),
        "reports": time.process_time(),
        "postgres": sum(cpu_seconds(pid) for pid in backends),
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU a live process and its children (a prefork pool) have used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # a backend that ended meanwhile
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


class Sandbox:
    """The Twilio sandbox in a child process (this script run with --sandbox PORT)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sandbox", str(port)], cwd=ROOT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.messages()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def messages(self, *, to: str | None = None) -> list[dict]:
        params = {"to": to} if to else {}
        answer = requests.get(f"{self.url}/_sandbox/messages.json", params=params, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def serve_sandbox(port: int) -> None:
    from notifications.sandbox.server import Sandbox as Server
    from notifications.sandbox.server import SandboxServer

    server = SandboxServer(
        Server(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM,
            auto_deliver=False,
            app_url="http://127.0.0.1:9",
        ),
        port=port,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sandbox"]:
        serve_sandbox(int(sys.argv[2]))
    else:
        main()
