"""The one privileged helper for host changes: an allowlist of operations, each validated."""
