"""Parts of ``bench.fleet``: the fleet server process, the watcher processes, and the recalibration hook."""
