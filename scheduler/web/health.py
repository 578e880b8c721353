"""The endpoints for machines, none behind a login: `/healthz` (the process answers),
`/readyz` (tminus can do its job: 503 with the reasons when not) and `/metrics` for
Prometheus. A scraper cannot log in: with TMINUS_METRICS_TOKEN set, `/metrics` asks for
it as a bearer token; without it, keep `/metrics` to the private network (README).

`/metrics` is a custom collector over the database, read at each scrape: the figures
are the queue's own, whichever daemon or web worker changed it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from scheduler.clock import Clock
from scheduler.service.health import Metrics, metrics, readiness


async def healthz(request: Request) -> Response:
    """The process is up and answering."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    clock: Clock = request.app.state.clock
    r = await run_in_threadpool(readiness, engine, clock.now())
    return JSONResponse({"ready": r.ready, "reasons": r.reasons, "notes": r.notes},
                        status_code=200 if r.ready else 503)


async def metrics_page(request: Request) -> Response:
    token: str | None = request.app.state.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return PlainTextResponse("a bearer token is needed (TMINUS_METRICS_TOKEN)\n",
                                     status_code=401, headers={"WWW-Authenticate": "Bearer"})
    engine: Engine = request.app.state.engine
    clock: Clock = request.app.state.clock
    body = await run_in_threadpool(exposition, engine, clock.now())
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def exposition(engine: Engine, now: datetime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(metrics(engine, now)))
    return generate_latest(registry)


class QueueCollector:
    """One scrape's figures, as Prometheus metric families."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        posts = GaugeMetricFamily("tminus_posts", "Posts by campaign, platform and state",
                                  labels=["campaign", "platform", "state"])
        for (campaign, platform, state), n in sorted(m.posts.items()):
            posts.add_metric([campaign, platform, state], n)
        yield posts
        outcomes = CounterMetricFamily("tminus_publish_outcomes",
                                       "Publish attempts by platform and what came of them",
                                       labels=["platform", "outcome"])
        for (platform, outcome), n in sorted(m.outcomes.items()):
            outcomes.add_metric([platform, outcome], n)
        yield outcomes
        late = HistogramMetricFamily("tminus_publish_lateness_seconds",
                                     "How long after its time each published post went out",
                                     labels=["platform"])
        for platform, h in sorted(m.lateness.items()):
            buckets = [(f"{b:g}", n) for b, n in h.buckets] + [("+Inf", h.count)]
            late.add_metric([platform], buckets, h.total_seconds)
        yield late
        deadline = GaugeMetricFamily("tminus_deadline_seconds",
                                     "Seconds until each campaign's deadline (negative: passed)",
                                     labels=["campaign"])
        for campaign, seconds in sorted(m.deadline_seconds.items()):
            deadline.add_metric([campaign], seconds)
        yield deadline
        beats = GaugeMetricFamily("tminus_daemon_last_heartbeat_timestamp_seconds",
                                  "When each live daemon last beat (it beats every 5 s, "
                                  "between its ticks)", labels=["daemon"])
        for daemon, at in sorted(m.heartbeats.items()):
            beats.add_metric([daemon], at.timestamp())
        yield beats
        yield GaugeMetricFamily("tminus_daemons_alive", "Daemons whose heartbeat is fresh",
                                value=len(m.heartbeats))
        budget = GaugeMetricFamily("tminus_rate_budget_remaining",
                                   "Posts each account may still send in its rate window now",
                                   labels=["account", "platform"])
        for (account, platform), left in sorted(m.budget_left.items()):
            budget.add_metric([account, platform], left)
        yield budget
        alerts = GaugeMetricFamily("tminus_alert_messages_undelivered",
                                   "Alert messages not delivered: still tried, or given up",
                                   labels=["status"])
        alerts.add_metric(["pending"], m.alerts_pending)
        alerts.add_metric(["given_up"], m.alerts_given_up)
        yield alerts
