"""The package's own files: the manifest and its signature."""
