"""confroute: a confidence-driven edge-cloud LLM router.

The package under ``shared/`` is the contract both sides import: the exception tree, the model
bundle format, the generation engine over a bundle, calibration maths and the generated gRPC stubs.
It never imports ``edge_agent`` or ``cloud_service``.
"""

__version__ = "0.1.0"
