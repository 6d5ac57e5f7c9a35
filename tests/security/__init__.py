"""Attack-class tests: each one fails on code without the defence it checks (docs/security.md)."""
