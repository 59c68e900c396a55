"""``roomd doctor``: is this deployment ready to sync? One line per check, with the fix.

Credentials and token, each Graph permission roomd uses (and any broader one), each room
mailbox readable and writable (application access policies answer 403), rooms whose copies hide
the subject or body, client-secret or certificate expiry, clock skew against both services,
and the Hybrid token, scopes, rooms and webhook. Decisions live in ``_decide`` (pure); the
probes in ``_graph``, ``_hybrid`` and ``_clock`` only gather facts through roomd's own clients.
"""

from roomd.doctor._check import Check, Status
from roomd.doctor._render import render_json, render_text
from roomd.doctor._run import exit_code, run_checks

__all__ = ["Check", "Status", "exit_code", "render_json", "render_text", "run_checks"]
