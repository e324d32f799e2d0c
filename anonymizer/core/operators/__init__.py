"""Operators, one module each, found by name through ``REGISTRY``."""

from . import drop, generalize_agent, generalize_year, keep, mask_ip, primary_language, pseudonymize, pseudonymize_mbox, redact, scrub_text, scrub_url, truncate_time
from .base import DROP, REGISTRY, BuildContext, EventState, Identity, Operator, OperatorFn, register

__all__ = ["DROP", "REGISTRY", "BuildContext", "EventState", "Identity", "Operator", "OperatorFn", "register"]
