"""ClusterState: the listing signal, tombstones and relist pruning."""

from __future__ import annotations

import time

import pytest

from controller.model import ResourceId, Snapshot
from controller.sync.state import ClusterState


def snap(uid: str, ns: str = "a", *, hosts: tuple[str, ...] = ("x.local",), ip: str = "10.0.0.1") -> Snapshot:
    return Snapshot(
        namespace=ns, name=f"ing-{uid}", uid=uid, created="2024-01-01T00:00:00Z", hosts=hosts, ips=(ip,)
    )


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def list_scope(
    state: ClusterState, scope: str | None, *snaps: Snapshot, process: bool = True
) -> list[Snapshot]:
    """One listing as the watch-stream hook reports it, then (optionally) the handler's events."""
    state.listing_started(scope)
    for s in snaps:
        state.listed_object(scope, s.uid)
    gone = state.listing_complete(scope)
    if process:
        for s in snaps:
            state.apply(None, s)
    return gone


def uids(state: ClusterState) -> set[str]:
    return {s.uid for s in state.snapshots()}


# ------------------------------------------------------------------------------------- listing signal


def test_not_listed_before_any_listing():
    state = ClusterState(["a"])
    assert not state.listed


def test_empty_listing_counts_as_listed():
    state = ClusterState(["a"])
    list_scope(state, "a")
    assert state.listed
    assert len(state) == 0


def test_empty_listing_of_only_the_bookmark_counts():
    # An empty listing may report "complete" without "start" (the hook notifies start too, but be robust).
    state = ClusterState(["a"])
    assert state.listing_complete("a") == []
    assert state.listed


def test_listed_only_when_every_scope_is_listed():
    state = ClusterState(["a", "b", "c"])
    list_scope(state, "a")
    assert not state.listed
    list_scope(state, "c")
    assert not state.listed
    list_scope(state, "b")
    assert state.listed


def test_listing_of_an_unwatched_scope_does_not_count():
    state = ClusterState(["a"])
    list_scope(state, "b")
    list_scope(state, None)
    assert not state.listed


def test_cluster_wide_scope():
    state = ClusterState([None])
    list_scope(state, "a")
    assert not state.listed
    list_scope(state, None)
    assert state.listed


def test_not_listed_until_every_listed_object_is_processed():
    state = ClusterState(["a"])
    s1, s2 = snap("u1"), snap("u2")
    list_scope(state, "a", s1, s2, process=False)
    assert not state.listed  # the listing is complete, but the handler has not seen the objects yet
    state.apply(None, s1)
    assert not state.listed
    state.apply(None, s2)
    assert state.listed
    assert uids(state) == {"u1", "u2"}


def test_processing_an_unlisted_object_does_not_make_the_state_listed():
    state = ClusterState(["a"])
    state.listing_started("a")
    state.listed_object("a", "u1")
    state.apply(None, snap("other"))
    assert not state.listed


def test_listed_object_deleted_before_processing_no_longer_blocks():
    state = ClusterState(["a"])
    list_scope(state, "a", snap("u1"), process=False)
    assert not state.listed
    state.apply("DELETED", snap("u1"))
    assert state.listed
    assert len(state) == 0


def test_relisting_known_objects_keeps_the_state_listed():
    state = ClusterState(["a"])
    s1 = snap("u1")
    list_scope(state, "a", s1)
    assert state.listed
    list_scope(state, "a", s1, process=False)
    assert state.listed  # u1 is already known: no need to wait for its event


def test_relisting_with_a_new_object_waits_for_it():
    state = ClusterState(["a"])
    list_scope(state, "a", snap("u1"))
    list_scope(state, "a", snap("u1"), snap("u2"), process=False)
    assert not state.listed
    state.apply(None, snap("u2"))
    assert state.listed


# --------------------------------------------------------------------------------------------- pruning


def test_relisting_prunes_objects_missing_from_the_new_listing():
    state = ClusterState(["a"])
    s1, s2, s3 = snap("u1"), snap("u2"), snap("u3")
    list_scope(state, "a", s1, s2, s3)
    gone = list_scope(state, "a", s2)
    assert {g.uid for g in gone} == {"u1", "u3"}
    assert uids(state) == {"u2"}


def test_relisting_prunes_only_its_own_namespace():
    state = ClusterState(["a", "b"])
    list_scope(state, "a", snap("a1", "a"))
    list_scope(state, "b", snap("b1", "b"), snap("b2", "b"))
    gone = list_scope(state, "a")  # namespace a is now empty
    assert [g.uid for g in gone] == ["a1"]
    assert uids(state) == {"b1", "b2"}
    gone = list_scope(state, "b", snap("b2", "b"))
    assert [g.uid for g in gone] == ["b1"]
    assert uids(state) == {"b2"}


def test_cluster_wide_relisting_prunes_every_namespace():
    state = ClusterState([None])
    list_scope(state, None, snap("a1", "a"), snap("b1", "b"), snap("c1", "c"))
    gone = list_scope(state, None, snap("b1", "b"))
    assert {g.uid for g in gone} == {"a1", "c1"}
    assert uids(state) == {"b1"}


def test_pruned_objects_are_tombstoned():
    state = ClusterState(["a"])
    list_scope(state, "a", snap("u1"))
    list_scope(state, "a")
    assert state.apply("MODIFIED", snap("u1", ip="10.9.9.9")) is False  # a late event from the old stream
    assert len(state) == 0


def test_objects_added_by_events_are_kept_when_the_relisting_has_them():
    state = ClusterState(["a"])
    list_scope(state, "a")
    state.apply("ADDED", snap("u1"))
    gone = list_scope(state, "a", snap("u1"), process=False)
    assert gone == []
    assert uids(state) == {"u1"}


# ------------------------------------------------------------------------------------ events, tombstones


def test_apply_adds_modifies_and_deletes():
    state = ClusterState(["a"])
    assert state.apply("ADDED", snap("u1")) is True
    assert state.snapshots() == [snap("u1")]
    assert state.apply("MODIFIED", snap("u1", ip="10.0.0.2")) is True
    assert state.snapshots() == [snap("u1", ip="10.0.0.2")]
    assert state.apply("DELETED", snap("u1", ip="10.0.0.2")) is True
    assert state.snapshots() == []


@pytest.mark.parametrize("event_type", [None, "ADDED", "MODIFIED"])
def test_late_events_after_deleted_are_ignored(event_type):
    state = ClusterState(["a"])
    state.apply("ADDED", snap("u1"))
    state.apply("DELETED", snap("u1"))
    generation = state.generation
    assert state.apply(event_type, snap("u1", ip="10.0.0.7")) is False
    assert len(state) == 0
    assert state.generation == generation


def test_a_new_object_with_the_same_name_but_new_uid_is_accepted():
    state = ClusterState(["a"])
    old = snap("u1")
    state.apply("ADDED", old)
    state.apply("DELETED", old)
    new = Snapshot(namespace="a", name=old.name, uid="u2", created="2024-02-01T00:00:00Z", hosts=("x.local",))
    assert state.apply("ADDED", new) is True
    assert state.snapshots() == [new]


def test_deleting_an_unknown_object_changes_nothing():
    calls = Calls()
    state = ClusterState(["a"], on_change=calls)
    assert state.apply("DELETED", snap("nope")) is False
    assert state.generation == 0
    assert calls.count == 0


def test_apply_returns_false_for_an_identical_snapshot():
    calls = Calls()
    state = ClusterState(["a"], on_change=calls)
    assert state.apply("ADDED", snap("u1")) is True
    generation = state.generation
    assert state.apply("MODIFIED", snap("u1")) is False  # e.g. only resourceVersion or annotations changed
    assert state.generation == generation
    assert calls.count == 1


def test_tombstones_are_bounded(monkeypatch):
    import controller.sync.state as state_module

    monkeypatch.setattr(state_module, "MAX_TOMBSTONES", 3)
    state = ClusterState(["a"])
    for i in range(5):
        state.apply("ADDED", snap(f"u{i}"))
        state.apply("DELETED", snap(f"u{i}"))
    assert len(state._tombstones) == 3
    # the oldest tombstones were dropped, the newest still swallow late events
    assert state.apply("MODIFIED", snap("u4")) is False
    assert state.apply("MODIFIED", snap("u0")) is True


# ------------------------------------------------------------------ generation, first change, on_change


def test_generation_counts_changes_and_on_change_is_called_each_time():
    calls = Calls()
    state = ClusterState(["a"], on_change=calls)
    assert state.generation == 0
    state.apply("ADDED", snap("u1"))
    state.apply("ADDED", snap("u2"))
    state.apply("MODIFIED", snap("u1", ip="10.0.0.3"))
    state.apply("DELETED", snap("u2"))
    assert state.generation == 4
    assert calls.count == 4


def test_first_listing_is_a_change_even_when_empty_but_an_identical_relisting_is_not():
    calls = Calls()
    state = ClusterState(["a"], on_change=calls)
    list_scope(state, "a")
    assert (state.generation, calls.count) == (1, 1)  # wakes the writer: the empty listing must be synced
    list_scope(state, "a")
    assert (state.generation, calls.count) == (1, 1)
    list_scope(state, "a", snap("u1"))
    assert (state.generation, calls.count) == (2, 2)  # the event, not the listing, changed it
    list_scope(state, "a")  # pruned
    assert (state.generation, calls.count) == (3, 3)


def test_first_unsynced_change_is_the_earliest_change_until_taken():
    state = ClusterState(["a"])
    assert state.first_unsynced_change is None
    assert state.take_first_change() is None
    before = time.monotonic()
    state.apply("ADDED", snap("u1"))
    first = state.first_unsynced_change
    assert first is not None and before <= first <= time.monotonic()
    state.apply("ADDED", snap("u2"))
    assert state.first_unsynced_change == first  # not moved by later changes
    assert state.take_first_change() == first
    assert state.first_unsynced_change is None
    assert state.take_first_change() is None
    state.apply("ADDED", snap("u3"))
    assert state.first_unsynced_change is not None and state.first_unsynced_change >= first


def test_no_change_leaves_first_unsynced_change_unset():
    state = ClusterState(["a"])
    state.apply("ADDED", snap("u1"))
    state.take_first_change()
    state.apply("MODIFIED", snap("u1"))
    state.apply("DELETED", snap("nope"))
    assert state.first_unsynced_change is None


def test_len_and_snapshots_reflect_objects():
    state = ClusterState(["a", "b"])
    state.apply(None, snap("u1", "a"))
    state.apply(None, snap("u2", "b"))
    assert len(state) == 2
    assert sorted(s.uid for s in state.snapshots()) == ["u1", "u2"]
    # snapshots() is a copy: mutating it does not change the state
    state.snapshots().clear()
    assert len(state) == 2


# ---------------------------------------------------------------------- resource-qualified scopes

GW = "gateway.networking.k8s.io"
INGRESSES, HTTPROUTES, GATEWAYS = (
    ResourceId("networking.k8s.io", "ingresses"),
    ResourceId(GW, "httproutes"),
    ResourceId(GW, "gateways"),
)
ISTIO_GATEWAYS = ResourceId("networking.istio.io", "gateways")  # kind Gateway, plural gateways, like ours
KINDS = {INGRESSES: "Ingress", HTTPROUTES: "HTTPRoute", GATEWAYS: "Gateway", ISTIO_GATEWAYS: "Gateway"}


def of(uid: str, resource: ResourceId, ns: str = "a") -> Snapshot:
    return Snapshot(
        namespace=ns,
        name=f"o-{uid}",
        uid=uid,
        created="2024-01-01T00:00:00Z",
        resource=resource,
        kind=KINDS[resource],
    )


def test_resource_qualified_scopes_are_listed_separately():
    state = ClusterState([(INGRESSES, "a"), (HTTPROUTES, "a"), (GATEWAYS, None)])
    list_scope(state, (INGRESSES, "a"))
    list_scope(state, (HTTPROUTES, "a"))
    assert not state.listed
    list_scope(state, "a")  # an unqualified scope is another scope
    assert not state.listed
    list_scope(state, (GATEWAYS, None))
    assert state.listed


def test_relisting_one_resource_prunes_only_that_resource_in_that_namespace():
    state = ClusterState([(INGRESSES, "a"), (HTTPROUTES, "a"), (INGRESSES, "b")])
    list_scope(state, (INGRESSES, "a"), of("i1", INGRESSES))
    list_scope(state, (HTTPROUTES, "a"), of("r1", HTTPROUTES))
    list_scope(state, (INGRESSES, "b"), of("i2", INGRESSES, "b"))
    gone = list_scope(state, (INGRESSES, "a"))
    assert [g.uid for g in gone] == ["i1"]
    assert uids(state) == {"r1", "i2"}


def test_relisting_a_cluster_wide_resource_prunes_that_resource_everywhere():
    state = ClusterState([(GATEWAYS, None), (HTTPROUTES, None)])
    list_scope(state, (GATEWAYS, None), of("g1", GATEWAYS, "x"), of("g2", GATEWAYS, "y"))
    list_scope(state, (HTTPROUTES, None), of("r1", HTTPROUTES, "x"))
    gone = list_scope(state, (GATEWAYS, None), of("g2", GATEWAYS, "y"))
    assert [g.uid for g in gone] == ["g1"]
    assert uids(state) == {"g2", "r1"}


def test_one_kind_in_two_api_groups_is_listed_and_pruned_apart():
    """The Gateway API's Gateway and Istio's share kind and plural: the state keeps them apart by group."""
    state = ClusterState([(GATEWAYS, "a"), (ISTIO_GATEWAYS, "a")])
    list_scope(state, (GATEWAYS, "a"), of("g1", GATEWAYS))
    assert not state.listed  # Istio's gateways are not listed yet
    list_scope(state, (ISTIO_GATEWAYS, "a"), of("i1", ISTIO_GATEWAYS))
    assert state.listed
    gone = list_scope(state, (GATEWAYS, "a"))  # ours, relisted empty: Istio's object stays
    assert [g.uid for g in gone] == ["g1"]
    assert uids(state) == {"i1"}
