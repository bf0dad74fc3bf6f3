"""c10d-conformance: a conformance suite for torch.distributed process-group backends.

Run it with ``pytest conformance/``; see README.md.  The pytest plugin lives in ``conformance.plugin``.
"""

__version__ = "0.1.0"
