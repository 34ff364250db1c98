"""Rate limits per person and per address, answered with 429 and Retry-After.

Fixed windows counted in Django's cache (Redis in production, so every web process shares the
counts). Sign-in failures are django-axes' business; this caps volume: report floods, API
scraping, password spraying that stays under the per-account failure limit.
"""

import hashlib
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from config.errors import api_error


@dataclass(frozen=True)
class Rule:
    name: str
    methods: frozenset[str]
    paths: tuple[str, ...]
    per_person: int
    per_address: int
    window_seconds: int


def rules() -> list[Rule]:
    return [
        Rule(
            name=name,
            methods=frozenset(spec["methods"]),
            paths=tuple(spec["paths"]),
            per_person=spec["per_person"],
            per_address=spec["per_address"],
            window_seconds=spec["window_seconds"],
        )
        for name, spec in settings.RATE_LIMITS.items()
    ]


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies say they were asked from."""
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR", "")


def person_key(request: HttpRequest) -> str | None:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    header = request.headers.get("Authorization", "")
    if header:
        # An API caller before DRF has authenticated it: its credential identifies it.
        return "cred:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return None


def count(keys: list[str], *, window: int, now: float) -> list[int]:
    """Count one request in each key's current window; return the counts, in order.

    On Redis every counter is bumped in one round trip (INCR, and EXPIRE NX so a window's
    counter lives only as long as the window), atomically; elsewhere (the in-process cache of
    development and tests) through the cache API."""
    window_start = int(now // window) * window
    buckets = [f"ratelimit:{key}:{window_start}" for key in keys]
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        names = [backend.make_and_validate_key(bucket) for bucket in buckets]
        pipe = _redis_client(backend).pipeline(transaction=True)
        for name in names:
            pipe.incr(name)
            pipe.expire(name, window + 5, nx=True)
        return pipe.execute()[::2]
    counts = []
    for bucket in buckets:
        backend.add(bucket, 0, timeout=window + 5)
        try:
            counts.append(backend.incr(bucket))
        except ValueError:  # expired between add and incr
            backend.add(bucket, 1, timeout=window + 5)
            counts.append(1)
    return counts


# A redis-py client for each connection pool: making one (as the cache backend does for every
# call) builds its table of response callbacks anew, a fifth of a millisecond per request.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis_client(backend: RedisCache):
    client_factory = backend._cache
    pool = client_factory._get_connection_pool(True)
    client = _clients.get(pool)
    if client is None:
        client = _clients[pool] = client_factory._client(connection_pool=pool)
    return client


def wait_seconds(*, window: int, now: float) -> int:
    """How long until the current window ends."""
    window_start = int(now // window) * window
    return max(1, int(window_start + window - now))


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        now = time.time()
        by_window: dict[int, list[tuple[str, int]]] = {}
        matching = [
            rule
            for rule in rules()
            if request.method in rule.methods and request.path.startswith(rule.paths)
        ]
        if not matching:
            return self.get_response(request)
        address, who = client_address(request), person_key(request)
        for rule in matching:
            checks = by_window.setdefault(rule.window_seconds, [])
            checks.append((f"{rule.name}:addr:{address}", rule.per_address))
            if who:
                checks.append((f"{rule.name}:{who}", rule.per_person))
        for window, checks in by_window.items():
            counts = count([key for key, _limit in checks], window=window, now=now)
            if any(n > limit for n, (_key, limit) in zip(counts, checks, strict=True)):
                return too_many(request, wait_seconds(window=window, now=now))
        return self.get_response(request)


def too_many(request: HttpRequest, wait: int) -> HttpResponse:
    minutes = max(1, round(wait / 60))
    message = _("Too many requests. Try again in %(minutes)d minutes.") % {"minutes": minutes}
    if request.path.startswith("/api/"):
        response = api_error("rate_limited", message, 429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response
