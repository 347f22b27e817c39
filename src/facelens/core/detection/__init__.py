"""Detection pre- and post-processing (pure NumPy)."""
