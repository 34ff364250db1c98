"""Twilio REST client construction, with an optional redirect to a local sandbox.

The real `twilio` SDK always talks to `https://*.twilio.com`. Development, CI and the test
suite point it at the local Twilio-compatible sandbox (`python -m notifications.sandbox`)
instead, so the code path that pages on-call managers is exercised end to end through the
real SDK (request encoding, auth, error parsing) without sending a real SMS.

No Django imports: the sandbox, scripts and tests use this module standalone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

DEFAULT_TIMEOUT_SECONDS = 10.0
TWILIO_API_BASE = "https://api.twilio.com/"
TWILIO_HOST_SUFFIX = ".twilio.com"


def is_twilio_url(url: str) -> bool:
    """Whether `url` targets Twilio's cloud (`https://*.twilio.com`).

    The hostname is compared, not the string prefix, so `api.twilio.com.example.org`
    is never mistaken for Twilio.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and host.endswith(TWILIO_HOST_SUFFIX)


def rewrite_twilio_url(url: str, *, api_url: str | None) -> str:
    """Point a Twilio cloud URL at `api_url`, keeping its path and query.

    Any other URL, or any URL when `api_url` is empty, is returned unchanged so the
    client behaves exactly like the SDK's own when no sandbox is configured.
    """
    if not api_url or not is_twilio_url(url):
        return url
    source = urlsplit(url)
    target = urlsplit(api_url)
    path = target.path.rstrip("/") + source.path
    return urlunsplit((target.scheme, target.netloc, path, source.query, source.fragment))


class RedirectingHttpClient(TwilioHttpClient):
    """`TwilioHttpClient` that sends Twilio cloud requests to `api_url` when it is set.

    Unlike the SDK's default client it has a finite default timeout: a paging task that
    hangs forever on a stuck connection is worse than one that fails and is retried.
    """

    def __init__(
        self,
        api_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        """`kwargs` go to `TwilioHttpClient` (pool_connections, proxy, max_retries, ...)."""
        super().__init__(timeout=timeout, **kwargs)
        self.api_url = api_url or None
        if self.session is not None:
            # Every request goes to one host, so what the environment says about reaching it
            # (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once, here: requests would
            # otherwise scan the environment again on every request, a millisecond a page.
            found = self.session.merge_environment_settings(
                self.rewrite_url(TWILIO_API_BASE), self.proxy, None, None, None
            )
            self.proxy = found["proxies"]
            self.session.verify = found["verify"]
            self.session.trust_env = False

    def rewrite_url(self, url: str) -> str:
        """The URL this client actually requests for the SDK's `url`."""
        return rewrite_twilio_url(url, api_url=self.api_url)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Same contract as `TwilioHttpClient.request`; only the URL may change."""
        return super().request(
            method,
            self.rewrite_url(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def make_twilio_client(
    *,
    account_sid: str,
    auth_token: str,
    api_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Client:
    """A `twilio.rest.Client` that talks to Twilio, or to the sandbox at `api_url`."""
    http_client = RedirectingHttpClient(api_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
