"""The web server's settings: gunicorn reads this file from the directory it starts in, so the
Dockerfile, docker-compose.yml and bench/load.py all run the same server (README, "Operations").

One process of sixteen threads by default. A thread, not a whole process, is held while a phone
on one bar of signal sends its report, so a few slow phones cannot stop an on-call manager's
acknowledgement or Twilio's webhooks from being answered (sync workers would each be held).
On two cores shared with PostgreSQL and the worker one process did best (README, "Benchmarks");
on a bigger machine raise WEB_CONCURRENCY towards one per core.
"""

import os


def _positive(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = _positive("WEB_CONCURRENCY", 1)
threads = _positive("WEB_THREADS", 16)
# One thread: plain sync workers (one request at a time each, a connection per request).
worker_class = "gthread" if threads > 1 else "sync"
# A phone keeps its connection for its next request; idle ones are let go after this.
keepalive = _positive("WEB_KEEPALIVE_SECONDS", 5)
