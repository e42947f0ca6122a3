"""Generated gRPC stubs for package ``confroute.v1``; do not edit (run ``scripts/gen_protos.py``).

Only the boundary (servicers, clients, ``confroute.contract``) imports these; everything else uses
the frozen dataclasses of ``confroute.contract``.
"""
