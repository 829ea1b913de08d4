"""`convo-fsm serve --store URL`: the admin pages and /metrics over a store's sessions.

    convo-fsm serve --store play.db                      # http://127.0.0.1:8377/
    convo-fsm serve --store redis://localhost:6379/0 --token "$TOKEN" --port 9000
    convo-fsm serve --store play.db --read-only          # no actions at all

Without `--token` a token is generated and printed once. The games' specs are known;
name others with `--spec MODULE:ATTR` (for their diagrams and `force`). Needs the `admin`
extra: pip install 'convo-fsm[admin]'.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]

DEFAULT_PORT = 8377


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the admin pages and /metrics for a store's sessions",
        description="Serve the live admin (overview, sessions, one session, actions, "
                    "Server-Sent Events, /metrics) over the sessions kept in a store.",
        epilog="examples:\n"
               "  convo-fsm serve --store ~/.local/state/convo-fsm/play.db\n"
               "  convo-fsm serve --store redis://localhost:6379/0 --port 9000\n"
               "  convo-fsm serve --store play.db --read-only")
    parser.add_argument("--store", required=True, metavar="URL",
                        help="the store: an SQLite file path, sqlite:///PATH or redis://...")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--token", help="the admin token for actions (default: generated and "
                                        "printed once)")
    parser.add_argument("--read-only", action="store_true", help="no actions at all")
    parser.add_argument("--spec", action="append", default=[], metavar="MODULE:ATTR",
                        help="a spec the store's sessions may name (the games' are known)")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"convo-fsm serve: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from convo_fsm.admin import store_app
        from convo_fsm.admin.app import LOCAL_HOSTS
        from convo_fsm.admin.source import load_specs
    except ImportError as exc:
        return _fail(f"the admin needs its extra: pip install 'convo-fsm[admin]' ({exc})")
    from convo_fsm.storage import StoreError, open_store

    if not 0 < args.port < 65536:
        return _fail(f"--port must be 1-65535, got {args.port}")
    if args.token is not None and len(args.token) < 8:
        return _fail("--token must be at least 8 characters")
    from convo_fsm.cli.sessions import check_ours

    try:
        specs = load_specs(args.spec)
        check_ours(args.store, default=False)  # a mistyped path is refused, not created
        store = open_store(args.store)
    except (StoreError, ValueError) as exc:
        return _fail(str(exc))
    # Bound to this machine only: answer only the names it is reached by here, so a web
    # page elsewhere cannot read the admin through a DNS name rebound to 127.0.0.1.
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    admin = store_app(store, specs.values(), token=args.token, read_only=args.read_only,
                      allowed_hosts=LOCAL_HOSTS if loopback else None)
    print(f"convo-fsm admin on http://{args.host}:{args.port}/ (store {args.store})", flush=True)
    if args.read_only:
        print("read-only: no actions", flush=True)
    elif admin.guard.generated:
        print(f"admin token (shown once): {admin.guard.token}", flush=True)
    uvicorn.run(admin, host=args.host, port=args.port, log_level="warning")
    return 0
