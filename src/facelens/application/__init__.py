"""Use cases: submit/query, the worker and the callback dispatcher. Depend on ports only."""
