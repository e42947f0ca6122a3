"""``make demo``: the whole system on one machine, from embedded defaults.

An embedded Redis-compatible server (valkey-server), the bundled ``tritonserver`` serving the local cloud
model, the cloud service, and an edge agent with SmolLM2 answering a mixed set of questions, with a live
table of who answered. Cloud processes are started as commands: this package never imports them.
"""
