"""A local Microsoft Graph for room calendars (issue 3): HTTPS, OpenID discovery and the v2.0
token endpoint, users and places, events with Exchange's room behaviour, recurrence,
calendarView delta, throttling, faults, ``$batch`` and a control surface.

``from roomd.sim.graph import GraphSimulator``; see docs/graph-simulator.md.
"""

from roomd.sim.graph.simulator import GraphSimulator

__all__ = ["GraphSimulator"]
