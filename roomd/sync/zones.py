"""Time-zone names as Microsoft Graph writes them, and as roomd needs them (IANA, for zoneinfo).

Graph's ``dateTimeTimeZone.timeZone``, ``originalStartTimeZone`` and a recurrence range's
``recurrenceTimeZone`` hold Windows names such as ``"Pacific Standard Time"`` (Microsoft Graph,
resources/datetimetimezone.md and event-get.md; docs/graph-behaviour.md 1.8), or IANA names when
the writer sent one. Hybrid and roomd use IANA names only.

The Windows <-> IANA table is Unicode CLDR's ``windowsZones.xml``, the table Microsoft itself
points to. ``tzlocal`` ships it, regenerated from CLDR at each release
(``tzlocal.windows_tz``), so roomd does not keep its own copy that would age. A Windows name maps
to the zone CLDR gives for territory "001", its representative (``"W. Europe Standard Time"`` ->
``Europe/Berlin``). The zones CLDR files under one Windows name follow that name's current rules,
and roomd only evaluates dates near now, so the representative gives the same wall clock as the
room's own zone would.

Pure: no I/O beyond zoneinfo's own lookup of the tz database (the ``tzdata`` dependency).
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from tzlocal.windows_tz import tz_win, win_tz

__all__ = ["is_windows_zone", "to_iana", "to_windows", "zone_info"]


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _windows_folded() -> dict[str, str]:
    """Windows names by their case-folded form: Graph spells them as CLDR does, but a name typed
    into a configuration file may not be."""
    return {name.casefold(): name for name in win_tz}


def _windows_name(name: str) -> str | None:
    if name in win_tz:
        return name
    return _windows_folded().get(name.casefold())


def is_windows_zone(name: str) -> bool:
    """Whether ``name`` is a Windows time-zone name (CLDR windowsZones), in any letter case."""
    return _windows_name(name) is not None


def to_iana(name: str) -> str:
    """The IANA name for a Windows or IANA time-zone name.

    A Windows name (``"Romance Standard Time"``) becomes CLDR's representative IANA zone
    (``"Europe/Paris"``); an IANA name known to the tz database is returned as it is. CLDR keeps
    some older IANA spellings (``"India Standard Time"`` -> ``"Asia/Calcutta"``, a link to
    ``Asia/Kolkata``): zoneinfo loads both, and two names may denote one zone. Anything
    else raises ValueError naming the value: a zone roomd cannot resolve must stop the item it
    belongs to, not be read as UTC. This includes Graph's ``tzone://Microsoft/Custom`` (a legacy
    custom zone whose rules Graph does not give; Microsoft Graph resources/event.md,
    ``originalStartTimeZone``).
    """
    if name in _iana_names():
        return name  # before the Windows table: "UTC" is a name in both
    windows = _windows_name(name)
    if windows is not None:
        return win_tz[windows]
    raise ValueError(f"unknown time zone {name!r}: neither a Windows (CLDR) nor an IANA name")


def to_windows(name: str) -> str:
    """The Windows name for an IANA or Windows time-zone name (``"Europe/Paris"`` ->
    ``"Romance Standard Time"``): for a Graph write that must name a zone the mailbox lists in
    ``outlookUser: supportedTimeZones``, whose default format is Windows names (Microsoft Graph,
    user-post-events.md). Raises ValueError naming the value when neither table knows it."""
    windows = _windows_name(name)
    if windows is not None:
        return windows
    iana = to_iana(name)
    try:
        return tz_win[iana]
    except KeyError:
        raise ValueError(f"time zone {name!r} has no Windows name in CLDR windowsZones") from None


def zone_info(name: str) -> ZoneInfo:
    """The zoneinfo zone for a Windows or IANA name (see :func:`to_iana`)."""
    return ZoneInfo(to_iana(name))
