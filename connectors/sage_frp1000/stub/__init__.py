"""A fake Sage FRP 1000 server for the demo, the tests and the benchmarks (never imported by the app)."""
