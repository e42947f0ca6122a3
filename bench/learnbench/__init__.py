"""Parts of ``bench.fleet_learning``: the local judge arm (the cloud model behind tritonserver), the local
TTFT of the default routing mode, and what the benchmark does not measure yet."""
