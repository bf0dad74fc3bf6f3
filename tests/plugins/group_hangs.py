"""A test-only backend ("grouphang") whose default group works and whose every further group never gets created.

Like torchft 0.2.0, where ``new_group``/``new_subgroups`` hang: the creator blocks forever for every group after
the first one this process creates (the default group), so the rank is stuck inside group creation itself.
"""
import threading

try:
    from ._gloo_delegate import GlooDelegate, register
except ImportError:             # imported as a top-level module (tests/plugins on sys.path)
    from _gloo_delegate import GlooDelegate, register


class GroupHangs(GlooDelegate):
    _groups_created = 0         # per process: the first group is init_process_group's

    @classmethod
    def create(cls, opts, pg_options=None):
        GroupHangs._groups_created += 1
        if GroupHangs._groups_created > 1:
            _wait_for_peers_forever()
        return super().create(opts, pg_options)


def _wait_for_peers_forever():
    # A rendezvous nobody completes: blocks without burning CPU, in the creator's frame.
    while True:
        threading.Event().wait(3600)


register("grouphang", GroupHangs)
