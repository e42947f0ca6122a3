"""Operating the cloud side (docs/monitoring.md).

- :mod:`.worker_metrics`, :mod:`.stream_lag`: the workers' instruments and their consumer groups' backlog;
- :mod:`.metric_table`: the table of every series, generated from the instruments;
- :mod:`.status`, :mod:`.http_api`, ``dashboard.html``: the status API and the dashboard on the service's
  HTTP port, for operators;
- :mod:`.devices`, :mod:`.fleet_view`: each device's last sighting and versions, noted on its calls and kept
  in Redis, and the fleet summarized; :mod:`.devices_command`: ``cloud-service devices list|show``;
- :mod:`.loop_window`, :mod:`.loop_source`, :mod:`.loop_monitor`: the live policy's figures over the last
  window of outcomes, what they are read from, and the service's periodic pass that publishes devices and
  windows as gauges and in the status;
- :mod:`.status_command`, :mod:`.outcomes_command` / :mod:`.outcomes_tail`, :mod:`.policy_view`,
  :mod:`.dry_run`: ``cloud-service status``, ``outcomes tail``, ``policy show|diff``, ``recalibrate --dry-run``.
"""
