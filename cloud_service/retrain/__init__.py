"""The fleet learns its router: probe features from held texts, and a worker that refits the router probe."""
