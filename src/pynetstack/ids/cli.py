"""``pynetstack ids``: offline inspection of a capture, like ``suricata -r FILE -S RULES -l DIR``;
passive inspection of an interface, like ``suricata -i IFACE``; and ``pynetstack ids --check -S
RULES`` to load a rule file and print its loading statistics."""

from __future__ import annotations

import json
import os
import sys


def _ids(args) -> int:
    from .addresses import DEFAULT_ADDRESS_VARS, DEFAULT_PORT_VARS
    from .baseline import BaselineDetector
    from .classify import parse_classification
    from .flood import SynFloodDetector
    from .replay import LogDirError, check_log_dir, run
    from .rules import RuleError, load_rule_files
    from .scan import ScanDetector

    if not args.rules:
        print("pynetstack: ids: give a rule file with -S FILE", file=sys.stderr)
        return 2
    if not args.check:
        try:  # as Suricata, before anything is loaded: a mistyped -l is not created
            check_log_dir(args.log_dir)
        except LogDirError as exc:
            print(f"pynetstack: ids: {exc}", file=sys.stderr)
            return 1
    avars = dict(DEFAULT_ADDRESS_VARS)
    if args.home_net:
        avars["HOME_NET"] = args.home_net
    classes = None
    if args.classification:
        with open(args.classification) as handle:
            classes = parse_classification(handle.read(), args.classification)
    try:
        ruleset = load_rule_files(args.rules, strict=args.strict, variables=(avars, dict(DEFAULT_PORT_VARS)),
                                  classes=classes)
    except RuleError as exc:
        print(f"pynetstack: ids: {exc}", file=sys.stderr)
        return 1
    print(ruleset.summary(), file=sys.stderr)
    if args.check:
        return 1 if ruleset.failed else 0
    if not args.read and not args.interface:
        print("pynetstack: ids: give a capture with -r FILE.pcap, an interface with -i IFACE (or --check)",
              file=sys.stderr)
        return 2
    detectors = []
    if not args.no_scan:
        detectors.append(ScanDetector())
        detectors.append(SynFloodDetector())
    if args.baseline:
        detectors.append(BaselineDetector())
    if args.interface:
        return _live(args, ruleset, detectors)
    stats = run(args.read, ruleset, args.log_dir, detectors, stream_depth=args.stream_depth)
    print(json.dumps(stats, indent=2, sort_keys=True))
    print(f"alerts: {stats['alerts_written']} written to {os.path.join(args.log_dir, 'eve.json')}", file=sys.stderr)
    if "capture_error" in stats:
        print(f"pynetstack: ids: error: {stats['capture_error']}; the rest of the file was not inspected",
              file=sys.stderr)
        return 1
    return 0


def _live(args, ruleset, detectors) -> int:
    import time

    from .engine import Detector
    from .eve import EveWriter
    from .passive import watch

    detector = Detector(ruleset, stream_depth=args.stream_depth, detectors=detectors)
    with open(os.path.join(args.log_dir, "eve.json"), "a") as eve, \
            open(os.path.join(args.log_dir, "fast.log"), "a") as fast:
        writer = EveWriter(eve, fast, clock_offset=time.time() - time.monotonic())
        print(f"pynetstack: ids: watching {args.interface}; alerts to {os.path.join(args.log_dir, 'eve.json')}",
              file=sys.stderr)
        stats = watch(args.interface, detector, writer, duration=args.duration)
    print(json.dumps(stats, indent=2, sort_keys=True))
    return 0


def register(sub) -> None:
    ids = sub.add_parser("ids", help="inspect a capture with Suricata rules (like suricata -r FILE -S RULES)")
    ids.add_argument("-r", "--read", metavar="FILE.pcap", help="the capture to inspect (pcap or pcapng)")
    ids.add_argument("-i", "--interface", metavar="IFACE", help="inspect an interface passively (AF_PACKET)")
    ids.add_argument("--duration", type=float, metavar="SECONDS", help="with -i: stop after SECONDS")
    ids.add_argument("-S", "--rules", action="append", metavar="FILE.rules", help="a rule file (repeatable)")
    ids.add_argument("-l", "--log-dir", default=".", metavar="DIR",
                     help="an existing directory: eve.json and fast.log are appended to there (default .)")
    ids.add_argument("--check", action="store_true", help="only load the rules and print the statistics")
    ids.add_argument("--strict", action="store_true", help="stop at the first malformed rule")
    ids.add_argument("--home-net", metavar="ADDRS", help="$HOME_NET, e.g. '[10.0.0.0/8]'")
    ids.add_argument("--classification", metavar="FILE", help="a classification.config")
    ids.add_argument("--stream-depth", type=int, default=65536, metavar="BYTES",
                     help="stream bytes inspected per flow direction (default 65536)")
    ids.add_argument("--no-scan", action="store_true", help="no scan or SYN-flood detection")
    ids.add_argument("--baseline", action="store_true", help="anomaly baselines too")
    ids.set_defaults(func=_ids)
