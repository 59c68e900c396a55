"""A simulator of the Hybrid booking system (OfficeRnD-compatible API) for tests and the demo.

Shares no code with roomd's Hybrid client (``roomd.hybrid``) or the sync engine: it is written
from OfficeRnD's documentation so that the two implementations check each other.

    sim = HybridSimulator()           # seeded from roomd.sim.tenant.default_tenant()
    await sim.start()                 # HTTPS on 127.0.0.1, ephemeral port
    sim.base_url, sim.token_url, sim.org, sim.client_id, sim.client_secret
    sim.control.approve(booking_id)   # act as the Hybrid app; faults; clock; deliveries
    await sim.stop()
"""

from roomd.sim.hybrid.clock import SimClock
from roomd.sim.hybrid.control import Control
from roomd.sim.hybrid.errors import ApiError
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.simulator import HybridSimulator
from roomd.sim.hybrid.webhooks import DeliveryPolicy, sign

__all__ = [
    "ApiError",
    "Control",
    "DeliveryPolicy",
    "Faults",
    "HybridSimulator",
    "SimClock",
    "sign",
]
