"""Sending: the transport (one hardened HTTP client), signing, and the worker that claims."""
