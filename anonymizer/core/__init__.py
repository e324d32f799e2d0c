"""The pure core: a policy compiled, and batches of lines anonymized under it. No files, no processes."""
