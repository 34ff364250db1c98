"""Command line entry point: `python -m notifications.sandbox --help`.

Every flag falls back to an environment variable, so docker-compose and CI can configure
the sandbox with the same variables the app reads (TWILIO_ACCOUNT_SID, ...).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Sequence

from notifications.sandbox.server import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_APP_URL,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_DELIVERY_DELAY_SECONDS,
    DEFAULT_FROM_NUMBER,
    DEFAULT_HOST,
    DEFAULT_PORT,
    Sandbox,
    SandboxServer,
)

logger = logging.getLogger("notifications.sandbox")


def env_flag(name: str, *, default: bool) -> bool:
    """A boolean environment variable: "1"/"0" (also true/false, yes/no, on/off)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str) -> list[str]:
    """A comma-separated environment variable, e.g. SANDBOX_UNREACHABLE=+447700900999,+4477..."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m notifications.sandbox",
        description="Local Twilio-compatible server for development and tests.",
    )
    parser.add_argument("--host", default=env.get("SANDBOX_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(env.get("SANDBOX_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--app-url",
        default=env.get("SANDBOX_APP_URL", DEFAULT_APP_URL),
        help="base URL of the Concernline app that receives the webhooks",
    )
    parser.add_argument("--account-sid", default=env.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID))
    parser.add_argument("--auth-token", default=env.get("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN))
    parser.add_argument(
        "--auto-deliver",
        action=argparse.BooleanOptionalAction,
        default=env_flag("SANDBOX_AUTO_DELIVER", default=True),
        help="send sent/delivered status callbacks for every new message",
    )
    parser.add_argument(
        "--from-number",
        default=env.get("TWILIO_FROM_NUMBER", DEFAULT_FROM_NUMBER),
        help="the Twilio number phones text by default",
    )
    parser.add_argument(
        "--delivery-delay",
        type=float,
        default=float(env.get("SANDBOX_DELIVERY_DELAY", DEFAULT_DELIVERY_DELAY_SECONDS)),
        help="seconds before each automatic status callback",
    )
    parser.add_argument(
        "--unreachable",
        action="append",
        default=env_list("SANDBOX_UNREACHABLE"),
        metavar="NUMBER",
        help="a number whose messages end undelivered with error 30003 (repeatable)",
    )
    return parser


def exit_on_sigterm(signum: int, frame: object) -> None:
    """`docker stop` sends SIGTERM, which a container's PID 1 would otherwise ignore."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sandbox = Sandbox(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        app_url=args.app_url,
        from_number=args.from_number,
        auto_deliver=args.auto_deliver,
        delivery_delay=args.delivery_delay,
        unreachable=args.unreachable,
    )
    server = SandboxServer(sandbox, host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    logger.info("Twilio sandbox on %s, sending webhooks to %s", server.url, sandbox.app_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
