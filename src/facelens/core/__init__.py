"""Pure domain code: no network, no database, no settings, no global state."""
