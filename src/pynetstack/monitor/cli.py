"""``pynetstack report`` and ``pynetstack top``: registered by ``register(sub)`` from cli.py."""

from __future__ import annotations

import os
import sys

DEFAULT_URL = "http://127.0.0.1:9469"


def _store_path(args) -> str:
    if args.store:
        return args.store
    if args.config:
        from ..config import load
        from .config import parse
        config = load(args.config)
        monitoring = parse(config.get("monitoring", {}), f"{args.config}: [monitoring]",
                           os.path.dirname(os.path.abspath(args.config)))
        if monitoring.store:
            return monitoring.store
        raise ValueError(f"{args.config}: [monitoring] has no store: add store = \"monitor.db\"")
    raise ValueError("say where the history is: --store FILE or --config FILE")


def _report(args) -> int:
    from . import reports
    from .config import duration
    from .store import Store
    since = duration(args.since, "--since")
    path = _store_path(args)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such store (the monitor creates it when it runs with store = ...)")
    store = Store(path)
    try:
        report = reports.build(store, args.kind, since,
                               progress=lambda text: print(f"report: {text}", file=sys.stderr, flush=True))
    finally:
        store.close()
    print(reports.render_text(report))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as handle:
            handle.write(reports.render_html(report))
        print(f"report: written to {args.html}", file=sys.stderr)
    return 0


def _top(args) -> int:
    from . import top
    try:
        return top.run(args.url, args.interval, args.count)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OSError(f"cannot reach the monitor at {args.url}: {reason}") from None


def register(sub) -> None:
    report = sub.add_parser("report", help="performance, security or traffic report from the monitor's store")
    report.add_argument("kind", choices=("performance", "security", "traffic"))
    report.add_argument("--since", default="1h", metavar="DURATION", help="how far back (e.g. 30m, 1h, 7d)")
    report.add_argument("--store", metavar="FILE", help="the monitor's SQLite store")
    report.add_argument("--config", metavar="FILE", help="take the store from this stack configuration")
    report.add_argument("--html", metavar="FILE.html", help="also write one self-contained HTML file with plots")
    report.set_defaults(func=_report)

    top = sub.add_parser("top", help="a live terminal view of a running stack's monitor (like iftop)")
    top.add_argument("--url", default=DEFAULT_URL, help=f"the monitor's address (default {DEFAULT_URL})")
    top.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="refresh period")
    top.add_argument("--count", type=int, default=0, metavar="N", help="stop after N refreshes (default: never)")
    top.set_defaults(func=_top)
