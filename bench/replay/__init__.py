"""Parts of ``python -m bench.routing_replay``: RouteLLM outcome data, features, routers, cross-fitting, report."""
