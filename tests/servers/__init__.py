"""Real servers that tests and benchmarks start as child processes on loopback ports."""
