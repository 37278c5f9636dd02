import os

from pynetstack.dns.zone import Zone, parse_zone_text

DATA = os.path.join(os.path.dirname(__file__), "data")


def zone_from_text(text: str, origin: str) -> Zone:
    return Zone.from_records(parse_zone_text(text, origin), origin)


class VirtualClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


