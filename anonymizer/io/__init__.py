"""A run over files: inputs, the worker pool, the journal, progress, and the run itself."""
