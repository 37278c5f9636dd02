"""DNS numbers (RFC 1035 and the IANA registries): record types, classes, rcodes, their names,
and the range checks every 16- and 32-bit field of a message goes through."""
from __future__ import annotations

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
IN = 1
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", MX: "MX", TXT: "TXT",
              AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY", 252: "AXFR", 251: "IXFR"}
TYPE_CODES = {v: k for k, v in TYPE_NAMES.items()}
CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
CLASS_CODES = {v: k for k, v in CLASS_NAMES.items()}

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 16: "BADVERS"}
OPCODE_QUERY = 0

MAX_NAME = 255
MAX_LABEL = 63


def type_name(rtype: int) -> str:
    return TYPE_NAMES.get(rtype) or f"TYPE{rtype}"


def type_code(text: str) -> int:
    """``"MX"`` -> 15; also the RFC 3597 form ``"TYPE65534"``. ValueError if unknown."""
    up = text.upper()
    if up in TYPE_CODES:
        return TYPE_CODES[up]
    if up.startswith("TYPE") and up[4:].isdigit() and int(up[4:]) < 65536:
        return int(up[4:])
    raise ValueError(f"unknown record type {text!r}")


def class_code(text: str) -> int:
    up = text.upper()
    if up in CLASS_CODES:
        return CLASS_CODES[up]
    if up.startswith("CLASS") and up[5:].isdigit() and int(up[5:]) < 65536:
        return int(up[5:])
    raise ValueError(f"unknown class {text!r}")


def check_u16(v) -> int:
    v = int(v)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f"{v} does not fit in 16 bits")
    return v


def check_u32(v) -> int:
    v = int(v)
    if not 0 <= v <= 0xFFFFFFFF:
        raise ValueError(f"{v} does not fit in 32 bits")
    return v
