"""Parts of ``python -m bench.load``: the simulated devices' traffic and the processes' memory."""
