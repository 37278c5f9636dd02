"""pynetstack: a userspace TCP/IP network stack and network-function toolkit."""

__version__ = "0.1.0"
