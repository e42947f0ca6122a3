"""A router probe as the retrain worker publishes it: the fleet's signed artifact
(:class:`confroute.contract.router_probe.RouterProbe`), re-exported where the worker's code looks for it."""

from confroute.contract.router_probe import FORMAT, RouterProbe

__all__ = ["FORMAT", "RouterProbe"]
