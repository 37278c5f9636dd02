"""The kernel is the oracle: the same files loaded by the real ``nft`` into a throw-away network
namespace list exactly as pynetstack lists them, and nft rejects what pynetstack rejects with the
same first error."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from pynetstack.netfilter.nft import NftError, load, loads

from .nftgen import nat_ruleset_text, random_nat_rules, random_rules, ruleset_text
from .nftstub import DATA, EXAMPLES
from .test_nft_errors import ACCEPTED_NAME_CASES, AS_NFT, REFUSED_NAME_CASES

pytestmark = pytest.mark.interop

NFT = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
if NFT is None and not os.environ.get("PYNETSTACK_REQUIRE_INTEROP"):
    pytest.skip("nft is not installed", allow_module_level=True)


def _namespace():
    assert NFT, "nft is not installed but PYNETSTACK_REQUIRE_INTEROP is set"
    name = f"nfthelper-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


netns = pytest.fixture(scope="module")(_namespace)
fresh_netns = pytest.fixture(scope="function")(_namespace)


def nft(netns: str, *args: str, cwd: str = DATA) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, NFT, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("name", EXAMPLES)
def test_kernel_lists_the_file_as_pynetstack_does(netns, name):
    assert nft(netns, "flush", "ruleset").returncode == 0
    loaded = nft(netns, "-I", DATA, "-f", name)
    assert loaded.returncode == 0, loaded.stderr
    kernel = nft(netns, "list", "ruleset")
    assert kernel.returncode == 0, kernel.stderr
    ours = load(os.path.join(DATA, name)).list_ruleset()
    assert ours == kernel.stdout
    # and the kernel's own listing loads back into pynetstack unchanged
    assert loads(kernel.stdout).list_ruleset() == kernel.stdout


@pytest.mark.parametrize("text,expected", AS_NFT)
def test_nft_check_prints_the_same_first_error(netns, tmp_path, text, expected):
    (tmp_path / "e.nft").write_text(text)
    assert nft(netns, "flush", "ruleset").returncode == 0  # else nft suggests names it has seen
    checked = nft(netns, "-c", "-f", "e.nft", cwd=str(tmp_path))
    assert checked.returncode != 0
    assert "\n".join(checked.stderr.split("\n")[:3]) == expected
    with pytest.raises(NftError) as info:
        loads(text, "e.nft")
    assert str(info.value) == expected



@pytest.mark.parametrize("text,expected", REFUSED_NAME_CASES)
def test_nft_check_refuses_a_keyword_as_a_name(netns, tmp_path, text, expected):
    """The expected texts pynetstack prints (test_nft_errors) are nft's own."""
    (tmp_path / "e.nft").write_text(text)
    checked = nft(netns, "-c", "-f", "e.nft", cwd=str(tmp_path))
    assert checked.returncode != 0
    assert "\n".join(checked.stderr.split("\n")[:3]) == expected


@pytest.mark.parametrize("text", ACCEPTED_NAME_CASES)
def test_nft_check_takes_the_other_words_as_names(netns, tmp_path, text):
    (tmp_path / "e.nft").write_text(text)
    checked = nft(netns, "-c", "-f", "e.nft", cwd=str(tmp_path))
    assert checked.returncode == 0, checked.stderr


def test_nft_check_and_pynetstack_agree_on_every_scanner_word_as_a_name(netns, tmp_path):
    """Each word of nft's scanner as a chain name: nft refuses exactly pynetstack's keywords."""
    from pynetstack.netfilter.nft.keywords import KEYWORDS
    with open(os.path.join(DATA, "nft_scanner_words.txt")) as fh:
        words = [w.strip() for w in fh if w.strip() and not w.startswith("#")]
    assert len(words) > 300
    disagree = []
    for word in words:
        kernel_ok, ours_ok = accepted_by_both(netns, tmp_path, f"table ip t {{\n\tchain {word} {{\n\t}}\n}}\n")
        if kernel_ok != ours_ok or kernel_ok == (word in KEYWORDS):
            disagree.append((word, kernel_ok, ours_ok))
    assert disagree == []

def accepted_by_both(netns, tmp_path, text: str):
    """(the kernel's ``nft -c`` takes ``text``, pynetstack's parser takes it)."""
    (tmp_path / "r.nft").write_text(text)
    kernel_ok = nft(netns, "-c", "-f", "r.nft", cwd=str(tmp_path)).returncode == 0
    try:
        loads(text)
    except NftError:
        return kernel_ok, False
    return kernel_ok, True


def test_listing_with_counters_and_handles_after_reload(fresh_netns, tmp_path):
    netns = fresh_netns  # table handles count per namespace, from 1 in a new one
    # counters written in the file survive into the kernel's listing and ours
    rs = load(os.path.join(DATA, "include_main.nft"))
    (tmp_path / "r.nft").write_text("flush ruleset\n" + rs.list_ruleset())
    assert nft(netns, "-f", "r.nft", cwd=str(tmp_path)).returncode == 0
    kernel = nft(netns, "-a", "list", "ruleset")
    assert loads((tmp_path / "r.nft").read_text()).list_ruleset(handles=True) == kernel.stdout


def agree_with_nft(netns, tmp_path, rules, text_of) -> None:
    """nft and pynetstack accept and reject the same rules (each alone in ``text_of([rule])``),
    and the accepted ones, loaded together, list alike."""
    good = []
    for rule in rules:
        kernel_ok, ours_ok = accepted_by_both(netns, tmp_path, text_of([rule]))
        assert ours_ok == kernel_ok, rule
        if kernel_ok:
            good.append(rule)
    text = "flush ruleset\n" + text_of(good)
    (tmp_path / "all.nft").write_text(text)
    assert nft(netns, "-f", "all.nft", cwd=str(tmp_path)).returncode == 0
    assert loads(text).list_ruleset() == nft(netns, "list", "ruleset").stdout


@pytest.mark.parametrize("seed", range(8))
def test_random_rules_agree_with_nft(netns, tmp_path, seed):
    """nft and pynetstack accept and reject the same random rules, and list the accepted ones alike."""
    family = "ip" if seed % 2 else "inet"
    agree_with_nft(netns, tmp_path, random_rules(seed, 25), lambda rules: ruleset_text(family, rules))


@pytest.mark.parametrize("seed", range(8))
def test_random_nat_rules_agree_with_nft(netns, tmp_path, seed):
    family = "ip" if seed % 2 else "inet"
    hook = "postrouting" if seed % 4 < 2 else "prerouting"
    agree_with_nft(netns, tmp_path, random_nat_rules(seed, 15, hook),
                   lambda rules: nat_ruleset_text(family, hook, rules))
