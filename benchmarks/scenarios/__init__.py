"""One module per system under test; each runs one workload at one size per process."""
