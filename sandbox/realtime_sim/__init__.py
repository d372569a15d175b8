"""A simulator of the OpenAI Realtime API (GA protocol) for tests, benchmarks and `make run`."""
