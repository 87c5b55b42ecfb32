"""Measuring a canary: instant queries against the Prometheus HTTP API.

The only I/O of the rollout package. Every failure (unreachable server, timeout, bad
PromQL, a result that is not one number) becomes an Inconclusive run with the reason in its
message; `measure` never raises for them, so the state machine sees each problem counted
against the inconclusive limit.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp

from modeldeploy.api.models import Analysis, AnalysisRun, Metric
from modeldeploy.rollout.analysis import QueryResult, Target, evaluate, interval_of, render_query
from modeldeploy.rollout.timing import format_timestamp

DEFAULT_TIMEOUT_SECONDS = 10.0


async def query(
    address: str, promql: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, at: datetime | None = None
) -> QueryResult:
    """Run an instant query (at `at`, or Prometheus's now) that must yield one number."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    url = address.rstrip("/") + "/api/v1/query"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, data=params) as response,
        ):
            body = await response.json(content_type=None)
    except TimeoutError:
        return QueryResult(error=f"no answer from {address} within {timeout:g}s")
    except (aiohttp.ClientError, ValueError) as error:
        return QueryResult(error=f"{address}: {type(error).__name__}: {error}")
    try:
        return _result_of(body, response.status)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return QueryResult(error=f"{address} answered something other than the Prometheus API: {error!r}")


def _result_of(body: Any, http_status: int) -> QueryResult:
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = body.get("error", body) if isinstance(body, dict) else body
        return QueryResult(error=f"HTTP {http_status}: {detail}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return QueryResult(value=float(data["result"][1]))
    if data["resultType"] != "vector":
        return QueryResult(error=f"the query returned a {data['resultType']}; it must return one number")
    series = data["result"]
    if not series:
        return QueryResult()
    if len(series) > 1:
        return QueryResult(error=f"the query returned {len(series)} series; it must return one number")
    return QueryResult(value=float(series[0]["value"][1]))


async def measure(
    analysis: Analysis,
    target: Target,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> tuple[AnalysisRun, ...]:
    """One measurement of `target` (see analysis.target_of): every metric of the analysis,
    queried concurrently at `now`."""
    time = format_timestamp(now)
    results = await asyncio.gather(
        *(_measure_metric(analysis, metric, target, now, timeout) for metric in analysis.metrics)
    )
    return tuple(
        evaluate(metric, result, time) for metric, result in zip(analysis.metrics, results, strict=True)
    )


async def _measure_metric(
    analysis: Analysis, metric: Metric, target: Target, now: datetime, timeout: float
) -> QueryResult:
    if analysis.prometheus is None:
        return QueryResult(error="no Prometheus address configured")
    try:
        promql = render_query(metric, target, interval_of(analysis))
    except ValueError as error:
        return QueryResult(error=str(error))
    return await query(analysis.prometheus.address, promql, timeout, at=now)
