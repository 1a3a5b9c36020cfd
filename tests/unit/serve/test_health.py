"""Readiness with named reasons (controller/serve/health.py): each component sets and clears its own
reason, one reason may hold per subject, and /readyz says the same text as before the reasons were typed."""

from __future__ import annotations

from controller.serve.health import Blocker, Health, Reason


def test_set_clear_and_list_named_reasons():
    health = Health()
    health.ready = True
    assert health.serving and health.blockers() == []
    health.set(Reason.WRITE, "the last write of the hosts file failed: disk full")
    health.set(Reason.API_SERVER, "connection refused; not ready until it works")
    assert not health.serving
    assert health.blocked_by(Reason.WRITE) and not health.blocked_by(Reason.BLOCK)
    assert health.message(Reason.WRITE) == "the last write of the hosts file failed: disk full"
    assert health.message(Reason.BLOCK) is None
    assert health.blockers() == [  # ordered by message, as /readyz shows them
        Blocker(Reason.API_SERVER, "", "connection refused; not ready until it works"),
        Blocker(Reason.WRITE, "", "the last write of the hosts file failed: disk full"),
    ]
    health.clear(Reason.WRITE)
    health.clear(Reason.WRITE)  # clearing a reason that is not set is harmless
    assert [b.reason for b in health.blockers()] == [Reason.API_SERVER]
    health.clear(Reason.API_SERVER)
    assert health.serving


def test_a_reason_holds_per_subject():
    """One watch stream working again does not clear another's failure."""
    health = Health()
    health.ready = True
    health.set(Reason.STREAM, "cannot watch ingresses in namespace a (forbidden)", "ingresses a")
    health.set(Reason.STREAM, "the watch of ingresses in namespace b is not established yet", "ingresses b")
    health.clear(Reason.STREAM, "ingresses a")
    assert not health.serving
    assert [b.subject for b in health.blockers()] == ["ingresses b"]
    assert not health.blocked_by(Reason.STREAM)  # no subject: a different key
    health.clear(Reason.STREAM, "ingresses b")
    assert health.serving


def test_readyz_text_is_unchanged():
    """The /readyz body is what it was with the plain dict: messages sorted, joined by "; "."""
    health = Health()
    assert health.why_not_ready() == "not ready: the first complete listing is not synced yet"
    health.set(Reason.OPERATOR, "kopf's operator stopped (x); restarting it, the entries stay as they are")
    health.set(Reason.BLOCK, "the block is missing from the file, repairing")
    assert health.why_not_ready() == (
        "not ready: kopf's operator stopped (x); restarting it, the entries stay as they are; "
        "the block is missing from the file, repairing"
    )
    health.ready = True
    health.clear(Reason.OPERATOR)
    assert health.why_not_ready() == "not ready: the block is missing from the file, repairing"


def test_reason_names_are_the_former_keys():
    """The reasons keep the names the components used as keys (logs and docs use them)."""
    assert {r.value for r in Reason} == {
        "stream",
        "api server",
        "kopf operator",
        "listing hook",
        "hosts file",
        "hosts file block",
    }
