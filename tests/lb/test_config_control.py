"""[lb] in the TOML, `lb list` like ipvsadm -Ln, and run-time changes through the control socket."""

from __future__ import annotations

import pytest

from pynetstack import config as configmod
from pynetstack.cli import build_parser
from pynetstack.lb import LbError
from pynetstack.lb.config import build, parse
from pynetstack.router_control import answer

from .lbsim import Lab

SECTION = {
    "timeouts": {"ESTABLISHED": 600},
    "service": [{
        "address": "10.0.9.100", "port": 80, "scheduler": "wrr", "persistence": 60, "netmask": "255.255.255.0",
        "health": {"type": "http", "path": "/health", "expect": 200},
        "server": [{"address": "10.0.1.2", "weight": 3}, {"address": "10.0.2.2", "port": 8080}],
    }],
}


def test_parse_builds_services_as_ipvsadm_would():
    parsed = parse(SECTION)
    (service,) = parsed["services"]
    assert service.scheduler.name == "wrr" and service.persistence == 60
    assert [s.name for s in service.servers] == ["10.0.2.2:8080", "10.0.1.2:80"]  # newest first
    assert service.health.path == "/health" and service.health.fall == 3
    assert parsed["timeouts"] == {"ESTABLISHED": 600}


@pytest.mark.parametrize("change, message", [
    ({"service": [{"address": "10.0.9.100", "port": 80, "scheduler": "fifo", "server": [{"address": "1.2.3.4"}]}]},
     "service #1: unknown scheduler 'fifo'"),
    ({"service": [{"address": "10.0.9.100", "port": 80}]}, "service #1: give its real servers"),
    ({"service": [{"address": "10.0.9.100", "port": 80, "server": [{"address": "1.2.3.4", "weight": -2}]}]},
     "service #1 server #1: weight must be 0..65535"),
    ({"service": [{"address": "10.0.9.100", "port": 80, "colour": "red", "server": []}]}, "unknown key 'colour'"),
    ({"timeouts": {"FOREVER": 1}}, "unknown IPVS time-out 'FOREVER'"),
    ({"service": [{"address": "10.0.9.100", "port": 80, "health": {"rise": 0},
                   "server": [{"address": "1.2.3.4"}]}]}, "health check rise"),
])
def test_bad_sections_give_one_clear_message(change, message):
    with pytest.raises(LbError, match=message.replace("(", r"\(")):
        parse(change)


def test_the_stack_config_validates_lb():
    config = {"interface": [{"tap": "pns0", "address": "10.0.0.1/24"}],
              "lb": {"service": [{"address": "10.0.9.100", "port": 80, "scheduler": "nope",
                                  "server": [{"address": "10.0.1.2"}]}]}}
    with pytest.raises(configmod.ConfigError, match=r"\[lb\] service #1: unknown scheduler"):
        configmod.validate(config, "test.toml")


def test_build_on_a_stack_and_list_like_ipvsadm():
    lab = Lab("rr", servers=2)
    lab.request(src_port=40000)
    text = answer(lab.lb_stack, "lb list")
    assert text.splitlines()[1:] == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.0.9.100:80 rr",
        "  -> 10.0.2.2:80                  Masq    1      0          1",
        "  -> 10.0.1.2:80                  Masq    1      0          0",
    ]
    stats = answer(lab.lb_stack, "lb list --stats").splitlines()
    assert stats[1].split() == ["Prot", "LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
    assert stats[3].split()[:3] == ["TCP", "10.0.9.100:80", "1"]
    assert "CPS" in answer(lab.lb_stack, "lb list --rate")


def test_run_time_changes_through_the_control_socket():
    lab = Lab("rr", servers=2)
    assert answer(lab.lb_stack, "lb add-server 10.0.9.100:80 10.0.3.2:80 weight 2") == ""
    assert lab.service.servers[0].name == "10.0.3.2:80" and lab.service.servers[0].weight == 2
    answer(lab.lb_stack, "lb edit-server tcp 10.0.9.100:80 10.0.3.2:80 weight 0")
    assert lab.service.servers[0].weight == 0
    answer(lab.lb_stack, "lb del-server 10.0.9.100:80 10.0.3.2:80")
    assert len(lab.service.servers) == 2
    assert answer(lab.lb_stack, "lb del-server 10.0.9.100:80 10.0.3.2:80").startswith("error: no server")
    assert answer(lab.lb_stack, "lb edit-server 10.0.9.9:80 10.0.1.2:80 weight 1").startswith(
        "error: no virtual service")


def test_no_lb_on_the_stack_says_so():
    lab = Lab("rr", servers=1)
    assert answer(lab.client, "lb list").startswith("error: this stack runs no load balancer")


def test_build_from_a_config_dict():
    lab = Lab("rr", servers=1)
    other = lab.sim.stack(forwarding=True)
    lb = build(other, {"lb": SECTION})
    assert other.lb is lb and len(lb.services) == 1
    assert lb.conns.timeouts[1] == 600  # ESTABLISHED


def test_cli_parses_lb_commands():
    args = build_parser().parse_args(["lb", "list", "--stats"])
    assert args.action == "list" and args.stats
    args = build_parser().parse_args(["lb", "edit-server", "10.0.9.100:80", "10.0.1.2:80", "--weight", "0"])
    assert (args.service, args.server, args.weight) == ("10.0.9.100:80", "10.0.1.2:80", 0)


def test_pynetstack_lb_list_through_a_control_socket(tmp_path, capsys):
    from pynetstack.cli import main
    from pynetstack.control import ControlServer
    lab = Lab("wrr", servers=2)
    path = str(tmp_path / "lb.sock")
    server = ControlServer(lab.lb_stack, path)
    try:
        assert main(["lb", "list", "--control", path]) == 0
        out = capsys.readouterr().out
        assert "TCP  10.0.9.100:80 wrr" in out and "10.0.2.2:80" in out
        assert main(["lb", "edit-server", "10.0.9.100:80", "10.0.2.2:80", "--weight", "0", "--control", path]) == 0
        assert lab.server(2).weight == 0
        assert main(["lb", "del-server", "10.0.9.100:80", "10.0.7.7:80", "--control", path]) == 1
        assert "no server 10.0.7.7:80" in capsys.readouterr().err
    finally:
        server.close()
