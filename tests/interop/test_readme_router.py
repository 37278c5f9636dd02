"""The README's router example as written: the nft file loads into pynetstack and into Linux
(`nft -c -f` in a namespace of the test's own), and the TOML that names it checks out."""

from __future__ import annotations

import pathlib
import re

from pynetstack import config
from pynetstack.cli import build_parser
from pynetstack.netfilter import nft

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _blocks():
    text = README.read_text()
    section = text[text.index("### As a router"):]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def test_router_example_files_as_written(lab, tmp_path):
    blocks = _blocks()
    (tmp_path / "router.nft").write_text(blocks[0][1])
    (tmp_path / "router.toml").write_text(blocks[1][1])
    ruleset = nft.load(str(tmp_path / "router.nft"))
    assert {chain.name for chain in ruleset.chains()} == {"prerouting", "postrouting", "forward"}
    parsed = config.load(str(tmp_path / "router.toml"))
    config.validate(parsed, "router.toml", str(tmp_path))
    ns = lab.netns("readme")
    result = lab.run(ns, "nft", "-c", "-f", str(tmp_path / "router.nft"))
    assert result.returncode == 0, result.stderr
    commands = [line.split("#")[0].split() for line in blocks[2][1].splitlines() if line.strip()]
    assert all(words[0] == "pynetstack" and words[1] in ("route", "conntrack", "nft") for words in commands)
    parser = build_parser()
    for words in commands:  # every command the README shows is one the CLI takes
        args = parser.parse_args(words[1:])
        assert args.func is not None
