"""``roomd demo``: a real roomd daemon between the Graph and Hybrid simulators, and a story.

It starts both simulators on loopback (a small tenant: four rooms, one needing approval and one
check-in, a few people, one of them with no mailbox), runs the real daemon against them with a
temporary config and state directory, and plays a short story that shows every promise of the
product, verifying each step on the other side and timing how long it took to get there. It
prints a timeline and a summary table, and exits 0 only if every step was verified. Nothing
leaves the machine. ``_stage`` sets the world up, ``_story`` holds the steps, ``_report`` prints.
"""

from roomd.demo._run import run_demo
from roomd.demo._stage import Stage

__all__ = ["Stage", "run_demo"]
