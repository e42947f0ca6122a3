"""Confroute's Redis layout in one place: the key schema (:mod:`.schema`), the Lua scripts
(:mod:`.scripts`, the ``lua/`` files) and what an acknowledged write promises (:mod:`.durability`)."""
