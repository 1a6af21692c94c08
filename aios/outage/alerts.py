"""Alerts through Apprise (Telegram `tgram://`, Slack, email `mailto://`, `json://` webhooks, …).

URLs come from `AIOS_ALERT_URLS` (space or comma separated) or, when unset, from the Prefect
Secret block `aios-alert-urls`. The URLs carry credentials (bot tokens, webhook paths, SMTP passwords), so
every URL and its token-like parts are registered with the log redactor as soon as they are read. One alert per health check that changed something, and at most one
per failover burst per provider (shared across processes and hosts through `health_store.claim`).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from aios.core.health import Change, Health
from aios.observability.redaction import MIN_SECRET_LENGTH, register_secret
from aios.config.settings import get_settings
from aios.outage import health_store

log = logging.getLogger("aios.alerts")
ALERTS_TABLE = "alerts"
SECRET_BLOCK = "aios-alert-urls"


def alert_urls() -> list[str]:
    raw = get_settings().alert_urls
    if not raw:
        try:
            from prefect.blocks.system import Secret

            raw = str(Secret.load(SECRET_BLOCK, _sync=True).get())
        except Exception:  # no block, or no server: alerts are simply off
            raw = ""
    urls = [u for u in re.split(r"[\s,]+", raw or "") if u]
    register_secret(*(part for url in urls for part in url_secrets(url)))
    return urls


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL worth hiding: the URL, its user:password, and every token-like segment.

    A segment is token-like when it is long enough and is neither a host name (has a dot) nor a plain
    lowercase word (`services`, `webhooks`), so `tgram://123456:AbC.../chat` hides the bot token but not `tgram`.
    """
    rest = url.split("://", 1)[-1]
    parts = [url]
    userinfo = rest.split("/", 1)[0].rpartition("@")[0]
    if userinfo:
        parts += [userinfo, userinfo.partition(":")[2]]
    for segment in re.split(r"[/@?&=#]+", rest):
        for piece in (segment, *segment.split(":")):
            if len(piece) >= MIN_SECRET_LENGTH and "." not in piece and not re.fullmatch(r"[a-z_-]+", piece):
                parts.append(piece)
    return list(dict.fromkeys(parts))


def send(title: str, body: str, kind: str = "warning") -> bool:
    """Deliver one alert to every configured channel; never raises (alerting must not break a run)."""
    urls = alert_urls()
    if not urls:
        return False
    import apprise

    client = apprise.Apprise()
    for url in urls:
        client.add(url)
    notify_type = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS}.get(
        kind, apprise.NotifyType.WARNING
    )
    try:
        ok = bool(client.notify(title=title, body=body, notify_type=notify_type))
    except Exception as exc:  # noqa: BLE001 - a broken channel is logged, not raised
        log.warning("alert delivery failed: %s", type(exc).__name__)
        return False
    if not ok:
        log.warning("alert delivery failed for at least one channel")
    return ok


def is_noise(change: Change) -> bool:
    """`unknown -> healthy` is a first sighting, not news (an idle provider goes unknown and back often)."""
    return change.old is Health.unknown and change.new is Health.healthy


def health_alert(changes: list[Change]) -> bool:
    """One alert for every status check that changed something (recoveries included)."""
    if not changes:
        return False
    recovered = all(c.new is Health.healthy for c in changes)
    title = "aios: recovered" if recovered else "aios: provider health changed"
    lines = [f"{c.subject}: {c.old.value} -> {c.new.value}" + (f" ({c.detail})" if c.detail else "") for c in changes]
    return send(title, "\n".join(lines), "success" if recovered else "warning")


def failover_alert(provider: str, skill: str, answered_by: str, reason: str) -> bool:
    """At most one alert per failover burst: skipped while the burst window of this provider is open."""
    window = timedelta(seconds=get_settings().alert_burst_seconds)
    now = datetime.now(UTC)

    def still_open(burst: dict) -> bool:
        return now - datetime.fromisoformat(burst["sent_at"]) < window

    if not health_store.claim(ALERTS_TABLE, f"failover:{provider}", {"sent_at": now.isoformat()}, still_open):
        return False  # this burst was already alerted (by this host or another)
    return send(f"aios: failing over from {provider}", f"{skill} answered by {answered_by}: {reason}")
