"""Helpers only the suite's own tests and benchmarks use (never the product's commands): an upstream that records
what it received, a JWKS endpoint, raw HTTP for malformed requests, and the threaded server under both."""
