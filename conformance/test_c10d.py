"""The conformance suite: one test per (world, case), parametrized by the plugin (see conformance/plugin.py)."""


def test_c10d(c10d_planned, c10d_check):
    c10d_check(c10d_planned)
