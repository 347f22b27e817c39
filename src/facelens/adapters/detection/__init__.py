"""Face detection adapters: weights, inference backends, modes, attributes.

Importing the package imports nothing: each module is imported by name, so a process
that only validates options (`attributes`) never loads an inference library.
"""
