"""The version of the tool, in a module of its own: the manifest and the journal record it, and
the package root re-exports it, without importing one another."""

__version__ = "0.1.0"
