"""Time-zone names as Graph speaks them: Windows names (and IANA names) mapped to ``zoneinfo``.

Graph's ``dateTimeTimeZone.timeZone`` and ``Prefer: outlook.timezone`` take Windows zone names
such as "Pacific Standard Time" (contrib: resources/datetimetimezone.md; api-reference/v1.0/api/
event-get.md); Outlook also accepts IANA names. The table follows CLDR's windowsZones.xml
("001" territory rows) for the zones a demo tenant is likely to use.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOWS_TO_IANA: dict[str, str] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Israel Standard Time": "Asia/Jerusalem",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota",
    "South Africa Standard Time": "Africa/Johannesburg",
}


class UnknownTimeZone(ValueError):
    """A zone name neither Windows nor IANA."""


def resolve_zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a Windows or IANA zone name; ``UnknownTimeZone`` otherwise."""
    stripped = name.strip()
    iana = WINDOWS_TO_IANA.get(stripped, stripped)
    if not iana:
        raise UnknownTimeZone("time zone name is empty")
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(f"time zone {name!r} is not a Windows or IANA zone name") from exc
