"""Operating the cloud side: the workers' metrics, the outcome streams' lag, the metric table of
``docs/monitoring.md``."""
