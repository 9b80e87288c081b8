"""One-command benchmark of chathooks against the machine's raw HTTP limit (see README)."""
