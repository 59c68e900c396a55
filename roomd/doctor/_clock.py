"""Clock skew against a service, read from its answers' ``Date`` header (RFC 9110 6.6.1).

A plain unauthenticated GET suffices (a 401 carries a ``Date`` too), so the skew is measured
even when the credentials are wrong: a skewed clock is itself a cause of refused assertions and
stale webhooks. The header has one-second resolution, so half a second is added to it and it is
compared with the middle of the request's round trip.
"""

from __future__ import annotations

import ssl
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from roomd.doctor import _decide as decide
from roomd.doctor._check import Check


def _verify(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


async def skew_check(service: str, url: str, ca_bundle: Path | None) -> Check:
    try:
        async with httpx.AsyncClient(verify=_verify(ca_bundle), timeout=10.0) as http:
            before = time.time()
            resp = await http.get(url)
            after = time.time()
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        return decide.skew_check(service, None, f"not checked: no answer ({type(exc).__name__})")
    header = resp.headers.get("date")
    try:
        served = parsedate_to_datetime(header).timestamp() + 0.5 if header else None
    except (TypeError, ValueError):
        served = None
    skew = served - (before + after) / 2 if served is not None else None
    return decide.skew_check(service, skew)
