"""Benchmarks that measure JARVIS against a baseline in the same run (``jarvis bench …``)."""
