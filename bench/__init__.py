"""roomd's benchmarks: run by hand as ``python -m bench NAME``; bench/README.md has the figures."""
