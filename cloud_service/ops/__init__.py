"""Operating the cloud side (docs/monitoring.md).

- :mod:`.worker_metrics`, :mod:`.stream_lag`: the workers' instruments and their consumer groups' backlog;
- :mod:`.metric_table`: the table of every series, generated from the instruments;
- :mod:`.status`, :mod:`.http_api`, ``dashboard.html``: the status API and the dashboard on the service's
  HTTP port, for operators;
- :mod:`.status_command`, :mod:`.outcomes_command` / :mod:`.outcomes_tail`, :mod:`.policy_view`,
  :mod:`.dry_run`: ``cloud-service status``, ``outcomes tail``, ``policy show|diff``, ``recalibrate --dry-run``.
"""
