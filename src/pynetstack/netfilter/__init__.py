"""Network functions on the packet path: connection tracking, NAT, the nftables language.

Everything here is sans-I/O: objects take packets and ``now`` and say what to do.
"""
