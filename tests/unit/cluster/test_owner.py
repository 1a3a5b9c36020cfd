"""The rule a stopping pod follows on its DaemonSet's answer (controller/cluster/owner.py, decision 13)."""

from __future__ import annotations

import pytest

from controller.cluster.owner import daemonset_path, judge, startup_warning

OWNER = "hosts-sync/hosts-sync-k8s-hosts-controller"


def test_the_path_of_the_daemonset():
    assert daemonset_path(OWNER) == (
        "/apis/apps/v1/namespaces/hosts-sync/daemonsets/hosts-sync-k8s-hosts-controller"
    )


def test_a_daemonset_that_exists_keeps_the_block():
    decision = judge(OWNER, 200, {"metadata": {"name": "x", "uid": "u"}})
    assert not decision.remove
    assert decision.reason == f"the DaemonSet {OWNER} still exists: leaving the block to the next pod"


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}, "is being deleted"),
        (404, {}, "is gone"),
        (403, {}, "403 Forbidden"),
        (401, {}, "401 Unauthorized"),
    ],
)
def test_a_release_that_is_going_takes_the_block(status, body, said):
    decision = judge(OWNER, status, body)
    assert decision.remove
    assert said in decision.reason and decision.reason.endswith("removing the block")


@pytest.mark.parametrize("status", [500, 503, 429, 0])
def test_an_answer_that_says_nothing_keeps_the_block(status):
    decision = judge(OWNER, status, {})
    assert not decision.remove
    assert decision.reason.startswith(f"cannot tell whether the DaemonSet {OWNER} still exists")
    assert f"answered {status}" in decision.reason


def test_at_start_an_answer_that_means_remove_is_a_warning_naming_the_fix():
    assert startup_warning(OWNER, judge(OWNER, 200, {})) is None
    assert startup_warning(OWNER, judge(OWNER, 503, {})) is None  # no answer: the stop would keep the block
    warning = startup_warning(OWNER, judge(OWNER, 403, {}))
    assert warning is not None
    assert warning.startswith(f"--owner-daemonset {OWNER}: at start, the API server refuses to show")
    assert "a replacement too, would remove the block" in warning
    assert "get on daemonsets/hosts-sync-k8s-hosts-controller in hosts-sync" in warning
    assert "at start, the DaemonSet" in (startup_warning(OWNER, judge(OWNER, 404, {})) or "")
