"""Run the OISF suricata-verify tests that pynetstack's IDS can run, and compare alerts.

    PYTHONPATH=src python3 tests/ids/tools/verify_suite.py /work/.mirror/OISF+suricata-verify/repo [--list]

A test is in scope when it has rules and a pcap, needs no command-line arguments besides '-k none',
every rule loads (no unsupported keyword), and at least one of its checks is an EVE filter on
alert events. Those filters are compared: the count of our alert records that carry every
key/value the filter matches. The test's suricata.yaml is read for its rule variables,
action-order and EVE alert xff setting (other settings are not). Checks on other event types (http, flow, stats) are not ours to
pass and are left out; a filter key we do not write makes the test out of scope.
Needs PyYAML (the system python3 has it) and git."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import yaml

from pynetstack.ids.capture import ip_datagram
from pynetstack.link.pcap import read_pcap
from pynetstack.ids.engine import Detector
from pynetstack.ids.eve import Xff, alert_event
from pynetstack.ids.replay import replay
from pynetstack.ids.rules import load_rules


def git(repo, *args) -> bytes:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True).stdout


def lookup(event: dict, dotted: str):
    value = event
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return KeyError
        value = value[part]
    return value


def alert_checks(checks):
    """The filter checks on alert events; None when one of them needs what we do not write."""
    out = []
    for check in checks or ():
        flt = check.get("filter") if isinstance(check, dict) else None
        if not flt or "match" not in flt or "count" not in flt:
            continue
        match = flt["match"] or {}
        if match.get("event_type") != "alert":
            continue
        for key in match:
            if key.startswith(("has-key", "not-has-key")) or not key.startswith(
                    ("event_type", "alert.signature_id", "alert.gid", "alert.rev", "alert.signature",
                     "alert.action", "src_ip", "dest_ip", "src_port", "dest_port", "proto", "pcap_cnt")):
                return None
            if key == "pcap_cnt":
                return None
        out.append((match, flt["count"]))
    return out


def engine_options(args):
    """The suricata command-line arguments a test gives, as Detector options; and what is not
    understood (the test is then out of scope)."""
    options, unknown = {}, []
    words = " ".join(args).split()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-k" and i + 1 < len(words) and words[i + 1] == "none":
            i += 2
            continue
        if word == "--simulate-ips":
            options["inline"] = True
        elif word == "--runmode" and i + 1 < len(words):
            i += 1
        elif word == "--set" and i + 1 < len(words):
            key, _, value = words[i + 1].partition("=")
            i += 1
            if key == "stream.midstream" and value in ("true", "yes"):
                options["midstream"] = True
            elif key == "stream.reassembly.depth":
                number = value.lower().rstrip("b")
                scale = {"k": 1 << 10, "m": 1 << 20}.get(number[-1:], 1)
                try:
                    options["stream_depth"] = int(number.rstrip("km")) * scale or (1 << 30)
                except ValueError:
                    unknown.append(word)
            else:
                unknown.append(words[i])
        else:
            unknown.append(word)
        i += 1
    return options, unknown


class Writer:
    def __init__(self, xff=None):
        self.events = []
        self.xff = xff

    def write(self, alerts):
        self.events.extend(alert_event(a, xff=self.xff) for a in alerts)


def test_config(repo: str, base: str, files) -> tuple:
    """What the test's own suricata.yaml changes that this engine understands: the rule
    variables (vars: address-groups, port-groups) and the action-order, as Detector options."""
    from pynetstack.ids.addresses import DEFAULT_ADDRESS_VARS, DEFAULT_PORT_VARS

    avars, pvars, options = dict(DEFAULT_ADDRESS_VARS), dict(DEFAULT_PORT_VARS), {}
    if "suricata.yaml" not in files:
        return (avars, pvars), options
    try:
        conf = yaml.safe_load(git(repo, "show", f"HEAD:{base}/suricata.yaml")) or {}
    except yaml.YAMLError:
        return (avars, pvars), options
    groups = conf.get("vars") or {}
    avars.update({k: str(v) for k, v in (groups.get("address-groups") or {}).items()})
    pvars.update({k: str(v) for k, v in (groups.get("port-groups") or {}).items()})
    if conf.get("action-order"):
        options["action_order"] = tuple(conf["action-order"])
    for output in conf.get("outputs") or ():
        eve = output.get("eve-log") if isinstance(output, dict) else None
        for kind in (eve or {}).get("types") or ():
            xff = kind.get("alert", {}).get("xff") if isinstance(kind, dict) and kind.get("alert") else None
            if xff and xff.get("enabled") in (True, "yes"):
                options["xff"] = Xff(xff.get("mode", "extra-data"), xff.get("deployment", "reverse"),
                                     xff.get("header", "X-Forwarded-For"))
    return (avars, pvars), options


def main(repo: str, listing: bool = False) -> int:
    names = sorted({path.split("/")[1] for path in git(repo, "ls-tree", "-r", "--name-only", "HEAD", "tests")
                    .decode().splitlines()})
    total = in_scope = passed = 0
    reasons = {}
    keywords = {}
    results = []
    for name in names:
        total += 1
        base = f"tests/{name}"
        files = git(repo, "ls-tree", "--name-only", "HEAD", base + "/").decode().split()
        files = [f.rsplit("/", 1)[-1] for f in files]
        if "test.yaml" not in files or "test.rules" not in files:
            reasons["no test.rules"] = reasons.get("no test.rules", 0) + 1
            continue
        spec = yaml.safe_load(git(repo, "show", f"HEAD:{base}/test.yaml")) or {}
        options, unknown = engine_options(spec.get("args") or [])
        if unknown or spec.get("command") or spec.get("skip"):
            reasons["arguments or command"] = reasons.get("arguments or command", 0) + 1
            continue
        requires = spec.get("requires") or {}
        if requires.get("features") or requires.get("lambda") or requires.get("script"):
            reasons["needs a feature"] = reasons.get("needs a feature", 0) + 1
            continue
        checks = alert_checks(spec.get("checks"))
        if not checks:
            reasons["no comparable alert check"] = reasons.get("no comparable alert check", 0) + 1
            continue
        pcap = spec.get("pcap")
        if pcap is False:
            reasons["no pcap"] = reasons.get("no pcap", 0) + 1
            continue
        pcap_path = os.path.normpath(f"{base}/{pcap}") if isinstance(pcap, str) else None
        if pcap_path is None:
            pcaps = [f for f in files if f.endswith((".pcap", ".pcapng"))]
            if len(pcaps) != 1:
                reasons["no single pcap"] = reasons.get("no single pcap", 0) + 1
                continue
            pcap_path = f"{base}/{pcaps[0]}"
        rules_text = git(repo, "show", f"HEAD:{base}/test.rules").decode("utf-8", "replace")
        variables, conf_options = test_config(repo, base, files)
        options.update(conf_options)
        ruleset = load_rules(rules_text, f"{name}/test.rules", variables=variables)
        if ruleset.skipped or ruleset.failed or not ruleset.loaded:
            key = "unsupported keyword" if ruleset.skipped else "rule failed to load" if ruleset.failed else "no rule"
            reasons[key] = reasons.get(key, 0) + 1
            for keyword in ruleset.skipped:
                keywords[keyword] = keywords.get(keyword, 0) + 1
            continue
        try:
            data = git(repo, "show", f"HEAD:{pcap_path}")
        except subprocess.CalledProcessError:
            reasons["pcap missing"] = reasons.get("pcap missing", 0) + 1
            continue
        with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                ipv4 = any(ip_datagram(lt, frame) is not None for _, lt, frame in read_pcap(tmp.name))
            except ValueError:
                ipv4 = False
            if not ipv4:  # an IPv6 (or unreadable) capture: this IDS is IPv4-only
                reasons["no IPv4 packet in the capture"] = reasons.get("no IPv4 packet in the capture", 0) + 1
                continue
            in_scope += 1
            writer = Writer(options.pop("xff", None))
            try:
                replay(tmp.name, Detector(ruleset, **options), writer)
                error = ""
            except Exception as exc:  # noqa: BLE001 - a report, not a crash
                error = f"{type(exc).__name__}: {exc}"
        ok = not error
        detail = []
        for match, count in checks:
            got = sum(1 for e in writer.events if all(lookup(e, k) == v for k, v in match.items()))
            if got != count:
                ok = False
                detail.append(f"{match} want {count} got {got}")
        passed += ok
        results.append((name, ok, error or "; ".join(detail)))
    if listing:
        for name, ok, detail in results:
            print(f"{'PASS' if ok else 'FAIL'} {name} {detail}")
    print(f"suricata-verify: {total} tests; out of scope: {dict(sorted(reasons.items()))}")
    print(f"in scope {in_scope}, passed {passed}, failed {in_scope - passed}")
    top = sorted(keywords.items(), key=lambda kv: -kv[1])[:15]
    print("tests out of scope per unsupported keyword (top 15):", ", ".join(f"{k} {n}" for k, n in top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--list" in sys.argv))
