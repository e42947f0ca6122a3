"""The questions: the library's sets (``confroute.probes.sets``), re-exported for the benchmark's modules."""

from confroute.probes.sets import MC_SETS, Item, ladder_items, load_items, mc_items, split

__all__ = ["MC_SETS", "Item", "ladder_items", "load_items", "mc_items", "split"]
