"""Parts of ``python -m bench.security``: the stack under attack and the attacks."""
