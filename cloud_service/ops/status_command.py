"""``cloud-service status``: the cloud side on one screen, from the service's status API.

It reads ``GET /api/status`` of a service replica (``--url``, the service's ``--metrics-listen`` address)
with an operator's token (``--token-file``; the file ``cloud-service devices enroll --operator
--token-file`` wrote), and, with ``--prometheus-url``, the alerts firing there and the workers (each one's
last successful pass, each consumer group's lag), which have no status API of their own. Redis is shown as
the service sees it: its loop monitor's last pass and the outcome log's write errors. A table for people,
``--json`` for scripts (the status document, with ``alerts`` and ``workers`` added). A service that cannot
be reached, or a token it refuses, is a clear error (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from confroute.errors import InvalidInput, PermissionDenied, Unauthenticated, Unavailable

DEFAULT_URL = "http://127.0.0.1:9464"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("CONFROUTE_CLOUD_STATUS_URL", DEFAULT_URL),
                        help=f"the service's HTTP address (its --metrics-listen; default {DEFAULT_URL}, "
                             "env CONFROUTE_CLOUD_STATUS_URL)")
    parser.add_argument("--token-file", type=Path,
                        default=os.environ.get("CONFROUTE_CLOUD_OPERATOR_TOKEN_FILE") or None,
                        help="a file holding the operator's token (env CONFROUTE_CLOUD_OPERATOR_TOKEN_FILE)")
    parser.add_argument("--prometheus-url", default=os.environ.get("CONFROUTE_CLOUD_PROMETHEUS_URL") or None,
                        help="Prometheus evaluating deploy/monitoring/alerts.yml: the alerts firing there")
    parser.add_argument("--json", action="store_true", help="the status document as JSON")
    parser.add_argument("--timeout-s", type=float, default=5.0)


def run(args: argparse.Namespace) -> int:
    token = _token(args.token_file)
    status = fetch_json(f"{args.url.rstrip('/')}/api/status", token, args.timeout_s, what="the status API")
    if args.prometheus_url:
        status["alerts"] = firing_alerts(args.prometheus_url, args.timeout_s)
        status["workers"] = worker_states(args.prometheus_url, args.timeout_s)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read the token file {path}: {exc.strerror}", field="token_file") from exc


def fetch_json(url: str, token: str | None, timeout_s: float, *, what: str) -> dict[str, Any]:
    """GET ``url`` as JSON; its failures as confroute errors naming ``what`` and ``url``."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    proxies: dict[str, str] | None = {} if urlsplit(url).hostname in _LOOPBACK else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            detail = _detail(exc.read())
        if exc.code == 401:
            raise Unauthenticated(f"{what} at {url} refused the credentials (401): {detail}") from exc
        if exc.code == 403:
            raise PermissionDenied(f"{what} at {url} refused this operator (403): {detail}") from exc
        raise Unavailable(f"{what} at {url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"cannot reach {what} at {url}: {reason}") from exc


def _detail(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]


def firing_alerts(prometheus_url: str, timeout_s: float) -> list[dict[str, str]]:
    """The alerts firing in Prometheus: name, severity and the labels that say where."""
    reply = fetch_json(f"{prometheus_url.rstrip('/')}/api/v1/alerts", None, timeout_s, what="Prometheus")
    alerts = []
    for alert in reply.get("data", {}).get("alerts", []):
        if alert.get("state") == "firing":
            labels = dict(alert.get("labels", {}))
            alerts.append({"alert": labels.pop("alertname", "?"), "severity": labels.pop("severity", ""),
                           "where": ", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
                           "summary": str(alert.get("annotations", {}).get("summary", ""))})
    return alerts


WORKERS_QUERY = "max by (worker) (time() - confroute_worker_last_success_timestamp_seconds)"
LAG_QUERY = "max by (group) (confroute_outcome_stream_lag)"


def worker_states(prometheus_url: str, timeout_s: float) -> dict[str, dict[str, float]]:
    """Seconds since each worker's last successful pass, and each consumer group's lag, from Prometheus."""
    return {"last_success_age_s": _vector(prometheus_url, WORKERS_QUERY, "worker", timeout_s),
            "stream_lag": _vector(prometheus_url, LAG_QUERY, "group", timeout_s)}


def _vector(prometheus_url: str, query: str, label: str, timeout_s: float) -> dict[str, float]:
    url = f"{prometheus_url.rstrip('/')}/api/v1/query?{urlencode({'query': query})}"
    reply = fetch_json(url, None, timeout_s, what="Prometheus")
    values: dict[str, float] = {}
    for sample in reply.get("data", {}).get("result", []):
        try:
            values[str(sample["metric"].get(label, "?"))] = round(float(sample["value"][1]), 1)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a sample Prometheus shaped otherwise is left out, not a failure of the screen
    return values


def render(status: dict[str, Any]) -> str:
    """The status as one screen of text."""
    service, triton, log, auth = status["service"], status["triton"], status["outcome_log"], status["auth"]
    lines = [
        f"confroute cloud service {status['version']}, up {_n(service['uptime_s'])} s",
        "",
        f"service   in flight {_n(service['inflight'])}/{service['max_inflight']}, refused {_n(service['refused'])}, "
        f"latency p50 {_n(service['latency_ms']['p50'])} ms p95 {_n(service['latency_ms']['p95'])} ms",
        f"          escalations {_counts(service['escalations'])}; shadow {_counts(service['shadow_requests'])}",
        f"triton    {'ready' if triton['ready'] else 'NOT READY'}, {_n(triton['calls'])} calls, queue "
        f"{_n(triton['queue_ms_mean'])} ms, compute {_n(triton['compute_ms_mean'])} ms (means), "
        f"errors {_counts(triton['errors'])}",
        f"outcomes  written {_n(log['written'])}, buffered {_n(log['buffered'])}, dropped {_n(log['dropped'])}, "
        f"write errors {_n(log['write_errors'])}",
        f"access    refused {_counts(auth['refusals'])}, rate limited {_n(auth['rate_limited'])}",
        _redis(status),
        _workers(status.get("workers")),
        _devices(status.get("devices")),
        "",
        *_fleet_table(status["fleet"]["partitions"], _windows(status.get("loop"))),
    ]
    if "alerts" in status:
        lines += ["", *_alerts(status["alerts"])]
    return "\n".join(lines)


def _redis(status: dict[str, Any]) -> str:
    """Redis as the service sees it: the loop monitor's last pass (it reads Redis) and the log's write errors."""
    loop, errors = status.get("loop"), status["outcome_log"]["write_errors"]
    writes = f"outcome log write errors {_n(errors)}"
    if not loop:
        return f"redis     {writes} (no loop monitor)"
    refreshed = loop.get("refreshed_at")
    ago = f"{_n(round(status['generated_at'] - refreshed))} s ago" if refreshed else "none yet"
    if loop.get("error"):
        return f"redis     FAILING: {loop['error']} (last good pass {ago}); {writes}"
    return f"redis     ok (the monitor's last pass {ago}); {writes}"


def _workers(workers: dict[str, dict[str, float]] | None) -> str:
    if workers is None:
        return "workers   (give --prometheus-url)"
    ages, lags = workers["last_success_age_s"], workers["stream_lag"]
    if not ages and not lags:
        return "workers   none reporting to Prometheus"
    done = ", ".join(f"{name} {_n(age)} s ago" for name, age in sorted(ages.items())) or "none yet"
    return f"workers   last good pass: {done}; lag {_counts(lags)}"


def _devices(devices: dict[str, Any] | None) -> str:
    if not devices:
        return "devices   not tracked (no loop monitor)"
    behind = sum(row["devices"] for row in devices["behind_policy"])
    probes = sorted({row["probe_version"] for row in devices["by_probe_version"]})
    return (f"devices   {devices['devices']} known, {devices['online']} online; {behind} behind their rollout; "
            f"probe versions {', '.join(probes) or '-'}")


def _windows(loop: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    return {(w["edge_model_version"], w["cohort"]): w for w in (loop or {}).get("windows", [])}


def _fleet_table(partitions: list[dict[str, Any]], windows: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Uploads per partition (since the process started), and the last window's ECE, AUROC and risk."""
    if not partitions:
        return ["fleet     no uploads yet"]
    header = ("EDGE MODEL", "COHORT", "UPLOADED", "ESCALATED", "RATE", "POLICY", "POST", "CANARY", "ECE", "AUROC",
              "RISK")
    rows = [header] + [(p["edge_model_version"], p["cohort"] or "(default)", _n(p["uploaded"]), _n(p["escalated"]),
                        _n(p["escalation_rate"]), p["policy_version"] or "-",
                        _n(p["thresholds"]["post"]) if p["thresholds"] else "-", _canary(p.get("rollout")),
                        *_window_cells(windows.get((p["edge_model_version"], p["cohort"]))))
                       for p in partitions]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _window_cells(window: dict[str, Any] | None) -> tuple[str, str, str]:
    if window is None:
        return "-", "-", "-"
    return _n(window["ece"]), _n(window["auroc"]), _n(window["risk"])


def _canary(rollout: dict[str, Any] | None) -> str:
    if not rollout:
        return "-"
    if not rollout["canary"]:
        return "pinned" if rollout["pinned"] else "none"
    return f"{rollout['canary']} ({rollout['canary_share']:.0%})"


def _alerts(alerts: list[dict[str, str]]) -> list[str]:
    if not alerts:
        return ["alerts    none firing"]
    return [f"ALERT     {a['alert']} [{a['severity']}] {a['where']}: {a['summary']}" for a in alerts]


def _counts(counts: dict[str, float]) -> str:
    return ", ".join(f"{name} {_n(value)}" for name, value in sorted(counts.items())) or "none"


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
