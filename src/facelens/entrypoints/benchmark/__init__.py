"""`facelens bench`: the service measured end to end on loopback (see bench_cmd)."""
