"""Helpers of ``bench.cloud_service``: the processes it runs, its load generator, the outcome-log benchmark."""
