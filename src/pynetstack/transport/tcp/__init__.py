"""TCP (RFC 9293), sans-I/O: ``TcpLayer`` is the transport registered for IP protocol 6."""

from .config import TcpConfig
from .connection import TcpConnection
from .state import (CLOSE_WAIT, CLOSED, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK, LISTEN,
                    STATES, SYN_RECEIVED, SYN_SENT, TIME_WAIT, TcpStateError)
from .layer import Listener, TcpLayer

__all__ = ["TcpConfig", "TcpConnection", "TcpLayer", "Listener", "STATES", "CLOSED", "LISTEN",
           "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
           "CLOSING", "LAST_ACK", "TIME_WAIT", "TcpStateError"]
