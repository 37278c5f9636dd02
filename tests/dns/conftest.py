import os

import pytest

from dnstest_helpers import DATA, VirtualClock
from pynetstack.dns.zone import load_zone


@pytest.fixture
def example_zone():
    return load_zone(os.path.join(DATA, "example.zone"))


@pytest.fixture
def clock():
    return VirtualClock()
