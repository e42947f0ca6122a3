"""Parts of ``bench.uncertainty``: the live edge model's confidence signals against its real errors."""
