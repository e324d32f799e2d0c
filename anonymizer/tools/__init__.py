"""Tools for the data steward: inspect logs, check a policy against a sample."""
