"""The simulator's documented switches: behaviour where Microsoft's documentation and observed
behaviour diverge, or where tests need to step time-dependent work by hand. Each switch names the
section of docs/graph-behaviour.md it follows; docs/graph-simulator.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

ORGANIZER_CANCEL_MODES = ("remove", "mark_cancelled")


@dataclass
class Switches:
    # 6.2/7.5: the RBA works "shortly after" the organizer's write. Seconds of event-loop time
    # per RBA stage; None = manual (tests call ``control.run_rba()``).
    rba_delay: float | None = 0.0
    # 6.2 [OBS]: the room copy first shows the real subject, then the organizer's name.
    rba_two_step: bool = True
    # 1.5/7.5: organizer cancel: rooms remove their copy [OBS lab] or keep it cancelled.
    organizer_cancel: str = "remove"
    # 1.4: calendarView delta returns no series masters; a third party saw one.
    series_master_in_delta: bool = False
    # 1.4 [INF]/PR #4501: a deleted occurrence yields @removed; switch off to test the fallback.
    report_deleted_occurrences: bool = True
    # 2.3: a POST repeating a transactionId returns the existing event.
    transaction_id_dedupe: bool = True
    # 1.2: empty pages with a nextLink at the start of each round.
    delta_empty_pages: int = 0
    # 1.2: the same entity more than once in a round.
    delta_duplicates: bool = False
    # 1.2: changes replayed in the next round.
    delta_replay: bool = False
    # 1.7: generations kept per delta chain (older links -> 410), max age (sim seconds; None =
    # no age limit), and whether the 410 says resyncRequired instead of SyncStateNotFound.
    delta_generations_kept: int = 3
    delta_token_max_age_s: float | None = None
    delta_resync_required: bool = False
    # 1.7 [DOC] "after the cache capacity is exceeded, the older delta tokens are deleted":
    # tokens kept per mailbox (nextLinks and deltaLinks of all its chains); older ones -> 410.
    delta_tokens_per_mailbox: int = 200
    # Default delta page size without ``Prefer: odata.maxpagesize``.
    delta_default_page_size: int = 10
    # 5.1-5.3: subscriptions. Maximum lifetime (minutes; 4,230 in the stored docs), whether a
    # plain-http notificationUrl is accepted (Graph requires https; loopback tests may not),
    # the validation deadline (10 s), the delivery deadline (3 s), and the retry delays (Graph
    # retries "for up to 4 hours"; compressed here), all in seconds.
    subscription_max_minutes: int = 4230
    subscription_allow_http: bool = False
    subscription_validation_timeout_s: float = 10.0
    notification_timeout_s: float = 3.0
    notification_retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown switch {name!r} (known: {', '.join(sorted(known))})")
            if name == "organizer_cancel" and value not in ORGANIZER_CANCEL_MODES:
                raise ValueError(
                    f"switch organizer_cancel must be one of {ORGANIZER_CANCEL_MODES}, "
                    f"got {value!r}"
                )
            if (
                name == "rba_delay"
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0)
            ):
                raise ValueError(f"switch rba_delay must be seconds >= 0 or null, got {value!r}")
            if name == "notification_retry_delays":
                if not isinstance(value, list | tuple) or not all(
                    isinstance(x, int | float) and x >= 0 for x in value
                ):
                    raise ValueError(
                        f"switch notification_retry_delays must be a list of seconds, got {value!r}"
                    )
                value = tuple(float(x) for x in value)
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
