"""The pure planner: snapshots in, entries, refusals and pending owners out."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.cluster import sources
from controller.engine.block import render_block
from controller.engine.entries import Entry
from controller.model import (
    BLOCK_FULL,
    CONFLICT,
    DOMAIN_FILTER,
    INVALID_ADDRESS,
    INVALID_ANNOTATION,
    INVALID_HOSTNAME,
    RESERVED_NAME,
    SHADOWED,
    TOO_MANY_ADDRESSES,
    UNRESOLVABLE,
    WILDCARD,
    Listener,
    ObjectRef,
    ResourceId,
    Snapshot,
)
from controller.sync.plan import (
    MAX_ADDRESSES_PER_OBJECT,
    MAX_HOSTS_PER_OBJECT,
    MAX_LINES_PER_OBJECT,
    Bounds,
    Filters,
    lookups,
    plan,
)
from controller.sync.share import MAX_BLOCK_BYTES, MAX_BLOCK_LINES, fair_shares

T0 = "2024-01-15T10:30:00Z"
T1 = "2024-01-15T10:31:00Z"
T2 = "2024-01-16T00:00:00Z"


def snap(
    name: str = "web",
    *,
    ns: str = "default",
    created: str = T0,
    hosts: tuple[str, ...] = ("app.local",),
    ips: tuple[str, ...] = ("10.0.0.1",),
    lb_hostnames: tuple[str, ...] = (),
    ingress_class: str | None = None,
    uid: str | None = None,
) -> Snapshot:
    return Snapshot(
        namespace=ns,
        name=name,
        uid=uid or f"uid-{ns}-{name}",
        created=created,
        hosts=hosts,
        ips=ips,
        lb_hostnames=lb_hostnames,
        ingress_class=ingress_class,
    )


def lines(p) -> list[tuple[str, str, str]]:
    return [(e.address, e.hostname, e.owner) for e in p.entries]


def refused(p) -> dict[tuple[str, str], str]:
    return {(r.owner, r.host): r.reason for r in p.rejections}


# ---------------------------------------------------------------------------------------------- entries


def test_each_host_of_an_object_gets_a_line_sorted_by_hostname():
    p = plan([snap(hosts=("b.local", "a.local", "c.local"), ips=("10.1.2.3",))])
    assert lines(p) == [
        ("10.1.2.3", "a.local", "default/web"),
        ("10.1.2.3", "b.local", "default/web"),
        ("10.1.2.3", "c.local", "default/web"),
    ]
    assert p.rejections == ()
    assert p.pending == ()
    assert p.considered == 1


def test_hostnames_are_lowercased_stripped_and_deduplicated():
    p = plan([snap(hosts=("App.Local", " app.local ", "", "APP.LOCAL"))])
    assert lines(p) == [("10.0.0.1", "app.local", "default/web")]


def test_ipv4_and_ipv6_give_one_line_each_ipv4_first():
    p = plan([snap(ips=("fd00::10", "172.18.0.5"))])
    assert lines(p) == [
        ("172.18.0.5", "app.local", "default/web"),
        ("fd00::10", "app.local", "default/web"),
    ]


def test_ipv6_addresses_are_normalised_and_deduplicated():
    p = plan([snap(ips=("FD00:0:0:0:0:0:0:1", "fd00::1"))])
    assert lines(p) == [("fd00::1", "app.local", "default/web")]


def test_entries_are_writable_entry_objects():
    p = plan([snap()])
    assert p.entries == (Entry(hostname="app.local", address="10.0.0.1", owner="default/web"),)


# ---------------------------------------------------------------------------------------------- pending


def test_object_without_address_is_pending_not_refused():
    p = plan([snap(ips=(), lb_hostnames=())])
    assert p.entries == ()
    assert p.rejections == ()
    assert p.pending == ("default/web",)
    assert p.considered == 1


def test_object_without_hosts_is_neither_pending_nor_refused():
    p = plan([snap(hosts=(), ips=())])
    assert (p.entries, p.rejections, p.pending, p.considered) == ((), (), (), 1)


def test_pending_object_does_not_block_another_objects_claim():
    p = plan([snap("old", created=T0, ips=()), snap("new", created=T1, ips=("10.0.0.9",))])
    assert lines(p) == [("10.0.0.9", "app.local", "default/new")]
    assert p.pending == ("default/old",)


# ------------------------------------------------------------------------------------ LB hostnames


def test_lb_hostname_uses_the_resolved_mapping():
    p = plan(
        [snap(ips=(), lb_hostnames=("localhost",))],
        resolved={"localhost": ("::1", "127.0.0.1")},
    )
    assert lines(p) == [("127.0.0.1", "app.local", "default/web"), ("::1", "app.local", "default/web")]


def test_lb_hostname_and_ip_are_merged():
    p = plan(
        [snap(ips=("10.0.0.1",), lb_hostnames=("lb.example.com",))],
        resolved={"lb.example.com": ("10.0.0.2", "10.0.0.1")},
    )
    assert [a for a, _, _ in lines(p)] == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize("resolved", [None, {}, {"lb.example.com": ()}, {"other": ("10.0.0.1",)}])
def test_unresolvable_lb_hostname_refuses_every_host_of_the_object(resolved):
    p = plan(
        [snap(hosts=("a.local", "b.local"), ips=(), lb_hostnames=("lb.example.com",))], resolved=resolved
    )
    assert p.entries == ()
    assert p.pending == ()
    assert refused(p) == {("default/web", "a.local"): UNRESOLVABLE, ("default/web", "b.local"): UNRESOLVABLE}
    assert all("lb.example.com" in r.message for r in p.rejections)
    assert all(r.uid == "uid-default-web" for r in p.rejections)


# ------------------------------------------------------------------------------------- bad addresses


@pytest.mark.parametrize("bad", ["not-an-ip", "300.1.1.1", "10.0.0", "10.0.0.1/24", " 10.0.0.1", "gg::1"])
def test_invalid_ip_refuses_the_objects_hosts(bad):
    p = plan([snap(hosts=("a.local",), ips=("10.0.0.1", bad))])
    assert p.entries == ()
    assert refused(p) == {("default/web", "a.local"): INVALID_ADDRESS}
    assert repr(bad) in p.rejections[0].message


def test_ipv6_with_zone_is_refused_not_raised():
    # ipaddress accepts "fe80::1%eth0", the engine cannot write it: refuse, never raise
    p = plan([snap(hosts=("a.local",), ips=("fe80::1%eth0",)), snap("other", hosts=("b.local",))])
    assert refused(p) == {("default/web", "a.local"): INVALID_ADDRESS}
    assert lines(p) == [("10.0.0.1", "b.local", "default/other")]


def test_one_objects_bad_address_does_not_affect_others():
    p = plan([snap("bad", hosts=("a.local",), ips=("nope",)), snap("good", hosts=("b.local",))])
    assert lines(p) == [("10.0.0.1", "b.local", "default/good")]
    assert refused(p) == {("default/bad", "a.local"): INVALID_ADDRESS}


# -------------------------------------------------------------------------------------- bad hostnames


@pytest.mark.parametrize("host", ["*.local", "*", "a.*.local", "foo*.local"])
def test_wildcard_hosts_are_refused(host):
    p = plan([snap(hosts=(host, "ok.local"))])
    assert lines(p) == [("10.0.0.1", "ok.local", "default/web")]
    assert refused(p) == {("default/web", host): WILDCARD}


@pytest.mark.parametrize(
    "host",
    ["-a.local", "a-.local", "a..local", "a.local.", "a_b.local", "é.local", "a" * 64 + ".local", "10.0.0.1"],
)
def test_invalid_hostnames_are_refused(host):
    p = plan([snap(hosts=(host, "ok.local"))])
    assert lines(p) == [("10.0.0.1", "ok.local", "default/web")]
    assert refused(p) == {("default/web", host.lower()): INVALID_HOSTNAME}


# ------------------------------------------------------------------------------------- domain filter


def test_domain_filter_is_a_suffix_on_label_boundaries():
    hosts = ("a.local", "local", "alocal", "a.local.evil.com", "b.a.local", "a.test")
    p = plan([snap(hosts=hosts)], filters=Filters.create(domains=["local"]))
    assert {h for _, h, _ in lines(p)} == {"a.local", "local", "b.a.local"}
    assert refused(p) == {
        ("default/web", "alocal"): DOMAIN_FILTER,
        ("default/web", "a.local.evil.com"): DOMAIN_FILTER,
        ("default/web", "a.test"): DOMAIN_FILTER,
    }
    assert all("local" in r.message for r in p.rejections)


def test_domain_filter_normalises_leading_dot_case_and_accepts_several():
    f = Filters.create(domains=[".LOCAL", " test. ", "", "."])
    assert f.domains == ("local", "test")
    p = plan([snap(hosts=("a.local", "b.test", "c.example"))], filters=f)
    assert {h for _, h, _ in lines(p)} == {"a.local", "b.test"}
    assert refused(p) == {("default/web", "c.example"): DOMAIN_FILTER}


def test_no_domain_filter_allows_everything():
    p = plan([snap(hosts=("a.example.com", "b.local"))], filters=Filters.create(domains=[]))
    assert len(p.entries) == 2


# ------------------------------------------------------------------------------------------ shadowing


def test_names_defined_outside_the_block_are_not_shadowed():
    p = plan(
        [snap(hosts=("router.lan", "mine.local", "app.local"))],
        defined_outside=frozenset({"router.lan", "mine.local"}),
    )
    assert lines(p) == [("10.0.0.1", "app.local", "default/web")]
    assert refused(p) == {("default/web", "router.lan"): SHADOWED, ("default/web", "mine.local"): SHADOWED}


LOOPBACK_ALIASES = [
    "localhost",
    "localhost.localdomain",
    "localhost4",
    "localhost6",
    "localhost4.localdomain4",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ip6-loopback",
    "app.localhost",
    "a.b.localhost",
    "LocalHost",
    "IP6-Loopback",
]


@pytest.mark.parametrize("outside", [frozenset(), frozenset({"localhost"})])
def test_loopback_names_are_refused_whether_or_not_the_file_defines_them(outside):
    """A hosts file without a localhost line must not get one from an Ingress (the README's promise)."""
    p = plan([snap(hosts=(*LOOPBACK_ALIASES, "app.local"))], defined_outside=outside)
    assert lines(p) == [("10.0.0.1", "app.local", "default/web")]
    assert refused(p) == {("default/web", h.lower()): RESERVED_NAME for h in LOOPBACK_ALIASES}
    assert all("loopback" in r.message for r in p.rejections)


def test_names_that_merely_contain_localhost_are_not_reserved():
    hosts = ("localhost.local", "mylocalhost.test", "localhost-app.test", "localhostx")
    p = plan([snap(hosts=hosts)])
    assert sorted(h for _, h, _ in lines(p)) == sorted(hosts)
    assert p.rejections == ()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True), max_size=3),
    st.sampled_from(["localhost", "LOCALHOST", "LocalHost"]),
    st.frozensets(st.sampled_from(["localhost", "app.localhost", "other.local"])),
)
def test_no_name_under_localhost_is_ever_written(labels, base, outside):
    """RFC 6761: localhost and every name under it mean loopback, with or without a line in the file."""
    host = ".".join([*labels, base])
    p = plan([snap(hosts=(host, "app.local"))], defined_outside=outside)
    assert [h for _, h, _ in lines(p)] == ["app.local"]
    assert refused(p) == {("default/web", host.lower()): RESERVED_NAME}


def test_shadowed_host_does_not_claim_so_no_conflict_is_reported():
    p = plan(
        [snap("a", created=T0, ips=("10.0.0.1",)), snap("b", created=T1, ips=("10.0.0.2",))],
        defined_outside=frozenset({"app.local"}),
    )
    assert p.entries == ()
    assert refused(p) == {("default/a", "app.local"): SHADOWED, ("default/b", "app.local"): SHADOWED}


# ------------------------------------------------------------------------------------------- conflicts


def test_conflict_oldest_creation_wins_and_loser_names_the_winner():
    old = snap("old", ns="team-b", created=T0, ips=("10.0.0.1",))
    new = snap("new", ns="team-a", created=T1, ips=("10.0.0.2",))
    for order in ([old, new], [new, old]):
        p = plan(order)
        assert lines(p) == [("10.0.0.1", "app.local", "team-b/old")]
        assert refused(p) == {("team-a/new", "app.local"): CONFLICT}
        (rejection,) = p.rejections
        assert "team-b/old" in rejection.message
        assert "10.0.0.1" in rejection.message
        assert rejection.uid == "uid-team-a-new"


def test_conflict_tie_on_creation_is_broken_by_namespace_then_name():
    a = snap("z", ns="a", created=T0, ips=("10.0.0.1",))
    b = snap("a", ns="b", created=T0, ips=("10.0.0.2",))
    c = snap("b", ns="b", created=T0, ips=("10.0.0.3",))
    p = plan([c, b, a])
    assert lines(p) == [("10.0.0.1", "app.local", "a/z")]
    assert refused(p) == {("b/a", "app.local"): CONFLICT, ("b/b", "app.local"): CONFLICT}
    p2 = plan([c, b])
    assert lines(p2) == [("10.0.0.2", "app.local", "b/a")]
    assert "b/a" in p2.rejections[0].message


def test_conflict_is_per_host_not_per_object():
    old = snap("old", created=T0, hosts=("shared.local",), ips=("10.0.0.1",))
    new = snap("new", created=T1, hosts=("shared.local", "own.local"), ips=("10.0.0.2",))
    p = plan([new, old])
    assert lines(p) == [
        ("10.0.0.2", "own.local", "default/new"),
        ("10.0.0.1", "shared.local", "default/old"),
    ]
    assert refused(p) == {("default/new", "shared.local"): CONFLICT}


def test_different_address_sets_conflict_even_when_overlapping():
    old = snap("old", created=T0, ips=("10.0.0.1",))
    new = snap("new", created=T1, ips=("10.0.0.1", "fd00::1"))
    p = plan([new, old])
    assert lines(p) == [("10.0.0.1", "app.local", "default/old")]
    assert refused(p) == {("default/new", "app.local"): CONFLICT}


def test_same_addresses_from_two_objects_one_line_per_address_owned_by_oldest():
    old = snap("old", created=T0, ips=("10.0.0.1", "fd00::1"))
    new = snap("new", ns="aaa", created=T1, ips=("fd00::1", "10.0.0.1"))
    p = plan([new, old])
    assert lines(p) == [
        ("10.0.0.1", "app.local", "default/old"),
        ("fd00::1", "app.local", "default/old"),
    ]
    assert p.rejections == ()


def test_same_address_via_resolved_lb_hostname_is_not_a_conflict():
    old = snap("old", created=T0, ips=("127.0.0.1",))
    new = snap("new", created=T1, ips=(), lb_hostnames=("localhost",))
    p = plan([new, old], resolved={"localhost": ("127.0.0.1",)})
    assert lines(p) == [("127.0.0.1", "app.local", "default/old")]
    assert p.rejections == ()


def test_older_object_with_invalid_address_does_not_win():
    old = snap("old", created=T0, ips=("bogus",))
    new = snap("new", created=T1, ips=("10.0.0.2",))
    p = plan([old, new])
    assert lines(p) == [("10.0.0.2", "app.local", "default/new")]
    assert refused(p) == {("default/old", "app.local"): INVALID_ADDRESS}


# ------------------------------------------------------------------------------------- ingress class


def test_ingress_class_filter_skips_other_classes_entirely():
    objs = [
        snap("n", hosts=("n.local",), ingress_class="nginx"),
        snap("t", hosts=("t.local",), ingress_class="traefik"),
        snap("none", hosts=("none.local",), ingress_class=None),
        snap("pending", hosts=("p.local",), ips=(), ingress_class="traefik"),
    ]
    p = plan(objs, filters=Filters.create(ingress_classes=["nginx"]))
    assert lines(p) == [("10.0.0.1", "n.local", "default/n")]
    assert p.considered == 1
    assert p.pending == ()
    assert p.rejections == ()
    p_all = plan(objs)
    assert p_all.considered == 4
    assert p_all.pending == ("default/pending",)


def test_ingress_class_filter_comma_list_and_repeats():
    f = Filters.create(ingress_classes=["nginx", " tyk ", ""])
    assert f.ingress_classes == ("nginx", "tyk")
    assert f.allows_class("tyk") and not f.allows_class(None) and not f.allows_class("traefik")


def test_filtered_out_object_cannot_win_a_conflict():
    old = snap("old", created=T0, ips=("10.0.0.1",), ingress_class="other")
    new = snap("new", created=T1, ips=("10.0.0.2",), ingress_class="nginx")
    p = plan([old, new], filters=Filters.create(ingress_classes=["nginx"]))
    assert lines(p) == [("10.0.0.2", "app.local", "default/new")]
    assert p.rejections == ()


def ingress(
    name="web", ns="default", *, class_name=None, annotation=None, rules=None, status=None, **meta_extra
) -> dict:
    meta = {"name": name, "namespace": ns, "uid": f"uid-{name}", "creationTimestamp": T0, **meta_extra}
    if annotation is not None:
        meta["annotations"] = {"kubernetes.io/ingress.class": annotation, "other": "x"}
    spec: dict = {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if rules is not None:
        spec["rules"] = rules
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


@pytest.fixture
def to_snapshot():
    """The Ingress reader of controller/cluster/sources.py."""
    return lambda body: sources.snapshot(sources.INGRESS, body)


def test_snapshot_class_from_spec_or_legacy_annotation_spec_wins(to_snapshot):
    assert to_snapshot(ingress(class_name="nginx")).ingress_class == "nginx"
    assert to_snapshot(ingress(annotation="traefik")).ingress_class == "traefik"
    assert to_snapshot(ingress(class_name="nginx", annotation="traefik")).ingress_class == "nginx"
    assert to_snapshot(ingress()).ingress_class is None


def test_legacy_annotation_class_is_filtered_like_spec_class(to_snapshot):
    objs = [
        to_snapshot(
            ingress("legacy", annotation="nginx", rules=[{"host": "l.local"}], status=lb({"ip": "10.0.0.1"}))
        ),
        to_snapshot(
            ingress("other", class_name="traefik", rules=[{"host": "o.local"}], status=lb({"ip": "10.0.0.2"}))
        ),
    ]
    p = plan(objs, filters=Filters.create(ingress_classes=["nginx"]))
    assert lines(p) == [("10.0.0.1", "l.local", "default/legacy")]


# ------------------------------------------------------------------------------ ingress_snapshot


def lb(*items: dict) -> dict:
    return {"loadBalancer": {"ingress": list(items)}}


def test_snapshot_from_a_realistic_ingress(to_snapshot):
    body = ingress(
        "dash",
        "tyk",
        class_name="nginx",
        rules=[
            {"host": "chart-dash.local", "http": {"paths": [{"path": "/", "pathType": "Prefix"}]}},
            {"host": "gw.local", "http": {"paths": []}},
            {"http": {"paths": [{"path": "/", "pathType": "Prefix"}]}},  # no host: default backend rule
        ],
        status=lb({"ip": "172.18.0.2"}, {"ip": "fc00:f853:ccd:e793::2"}),
        resourceVersion="123",
    )
    s = to_snapshot(body)
    assert (s.namespace, s.name, s.uid, s.created) == ("tyk", "dash", "uid-dash", T0)
    assert s.hosts == ("chart-dash.local", "gw.local")
    assert s.ips == ("172.18.0.2", "fc00:f853:ccd:e793::2")
    assert s.lb_hostnames == ()
    assert s.owner == "tyk/dash"
    assert s.has_address
    assert lines(plan([s])) == [
        ("172.18.0.2", "chart-dash.local", "tyk/dash"),
        ("fc00:f853:ccd:e793::2", "chart-dash.local", "tyk/dash"),
        ("172.18.0.2", "gw.local", "tyk/dash"),
        ("fc00:f853:ccd:e793::2", "gw.local", "tyk/dash"),
    ]


@pytest.mark.parametrize(
    "status", [None, {}, {"loadBalancer": {}}, lb(), {"loadBalancer": {"ingress": None}}]
)
def test_snapshot_without_status_address_is_pending(to_snapshot, status):
    s = to_snapshot(ingress(rules=[{"host": "a.local"}], status=status))
    assert s.ips == () and s.lb_hostnames == ()
    assert not s.has_address
    assert plan([s]).pending == ("default/web",)


def test_snapshot_lb_hostname_only_when_no_ip_in_the_same_item(to_snapshot):
    s = to_snapshot(
        ingress(
            rules=[{"host": "a.local"}],
            status=lb({"hostname": "localhost"}, {"ip": "10.0.0.1", "hostname": "ignored.example"}, {}),
        )
    )
    assert s.ips == ("10.0.0.1",)
    assert s.lb_hostnames == ("localhost",)


@pytest.mark.parametrize("rules", [None, [], [None], [{}], [{"host": ""}], [{"host": None}]])
def test_snapshot_with_empty_rules_has_no_hosts(to_snapshot, rules):
    s = to_snapshot(ingress(rules=rules, status=lb({"ip": "10.0.0.1"})))
    assert s.hosts == ()
    p = plan([s])
    assert (p.entries, p.rejections, p.pending) == ((), (), ())


def test_snapshot_from_a_minimal_body_does_not_raise(to_snapshot):
    s = to_snapshot({"metadata": {"name": "x"}, "spec": None, "status": None})
    assert (s.namespace, s.name, s.uid, s.created, s.hosts) == ("", "x", "", "", ())


# ------------------------------------------------------------------ annotations, Gateway API routes


def test_target_annotation_replaces_status_addresses():
    body = ingress(
        rules=[{"host": "a.local"}],
        status=lb({"ip": "10.0.0.1"}, {"hostname": "lb.example"}),
    )
    body["metadata"]["annotations"] = {sources.TARGET: " 192.168.1.5, FD00::5 "}
    s = sources.snapshot(sources.INGRESS, body)
    assert s.target == ("192.168.1.5", "fd00::5")
    p = plan([s])  # lb.example is not resolved, but the target wins so that does not matter
    assert lines(p) == [("192.168.1.5", "a.local", "default/web"), ("fd00::5", "a.local", "default/web")]
    assert p.rejections == ()


def test_target_annotation_makes_an_object_without_status_writable():
    body = ingress(rules=[{"host": "a.local"}])
    body["metadata"]["annotations"] = {sources.TARGET: "10.7.7.7"}
    p = plan([sources.snapshot(sources.INGRESS, body)])
    assert lines(p) == [("10.7.7.7", "a.local", "default/web")]
    assert p.pending == ()


def test_ignore_annotation_leaves_the_object_out_even_in_conflicts():
    old = ingress("old", rules=[{"host": "a.local"}], status=lb({"ip": "10.0.0.1"}))
    old["metadata"]["annotations"] = {sources.IGNORE: "True"}
    new = ingress("new", rules=[{"host": "a.local"}], status=lb({"ip": "10.0.0.2"}))
    new["metadata"]["creationTimestamp"] = T1
    p = plan([sources.snapshot(sources.INGRESS, old), sources.snapshot(sources.INGRESS, new)])
    assert lines(p) == [("10.0.0.2", "a.local", "default/new")]
    assert p.rejections == () and p.considered == 1


def test_hostnames_annotation_adds_names():
    body = ingress(rules=[{"host": "a.local"}], status=lb({"ip": "10.0.0.1"}))
    body["metadata"]["annotations"] = {sources.HOSTNAMES: "B.local, a.local,,c.local"}
    p = plan([sources.snapshot(sources.INGRESS, body)])
    assert [h for _, h, _ in lines(p)] == ["a.local", "b.local", "c.local"]


@pytest.mark.parametrize(
    "annotations",
    [
        {sources.TARGET: "10.0.0.1,not-an-ip"},
        {sources.TARGET: " , "},
        {sources.IGNORE: "maybe"},
    ],
)
def test_invalid_annotations_refuse_every_host_of_the_object(annotations):
    body = ingress(rules=[{"host": "a.local"}, {"host": "b.local"}], status=lb({"ip": "10.0.0.1"}))
    body["metadata"]["annotations"] = annotations
    p = plan([sources.snapshot(sources.INGRESS, body), snap("other", hosts=("o.local",))])
    assert lines(p) == [("10.0.0.1", "o.local", "default/other")]
    assert refused(p) == {
        ("default/web", "a.local"): INVALID_ANNOTATION,
        ("default/web", "b.local"): INVALID_ANNOTATION,
    }
    (key,) = annotations
    assert all(key in r.message for r in p.rejections)


def test_invalid_annotation_on_an_object_without_hosts_is_still_reported():
    body = ingress(rules=[], status=lb({"ip": "10.0.0.1"}))
    body["metadata"]["annotations"] = {sources.TARGET: "nope"}
    p = plan([sources.snapshot(sources.INGRESS, body)])
    assert [(r.owner, r.reason) for r in p.rejections] == [("default/web", INVALID_ANNOTATION)]
    assert p.entries == ()


ANY_NAMESPACE_LISTENER = {
    "name": "http",
    "port": 80,
    "protocol": "HTTP",
    "allowedRoutes": {"namespaces": {"from": "All"}},
}


def gateway_ref(ns: str, name: str) -> ObjectRef:
    return ObjectRef(sources.GATEWAY.id, ns, name)


def gateway(name="gw", ns="infra", addresses=(("IPAddress", "172.18.0.200"),)) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-gw-{name}", "creationTimestamp": T0},
        "spec": {"gatewayClassName": "eg", "listeners": [ANY_NAMESPACE_LISTENER]},
        "status": {"addresses": [{"type": t, "value": v} for t, v in addresses]},
    }


def route(
    name="r", ns="apps", hostnames=("r.local",), parents=(("infra", "gw", "True"),), created=T1
) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-route-{name}", "creationTimestamp": created},
        "spec": {
            "hostnames": list(hostnames),
            "parentRefs": [{"name": p[1], "namespace": p[0]} for p in parents],
        },
        "status": {
            "parents": [
                {
                    "parentRef": {"name": gname, "namespace": gns},
                    "controllerName": "example.com/gw",
                    "conditions": [{"type": "Accepted", "status": accepted}],
                }
                for gns, gname, accepted in parents
            ]
        },
    }


def test_route_takes_the_addresses_of_the_gateways_that_accepted_it():
    gws = [
        sources.snapshot(sources.GATEWAY, gateway("gw", addresses=(("IPAddress", "172.18.0.200"),))),
        sources.snapshot(sources.GATEWAY, gateway("gw6", addresses=(("IPAddress", "fd00::200"),))),
        sources.snapshot(sources.GATEWAY, gateway("refused", addresses=(("IPAddress", "10.9.9.9"),))),
    ]
    r = sources.route_snapshot(
        sources.HTTPROUTE,
        route(parents=(("infra", "gw", "True"), ("infra", "gw6", "True"), ("infra", "refused", "False"))),
    )
    assert r.parents == (gateway_ref("infra", "gw"), gateway_ref("infra", "gw6"))
    p = plan([*gws, r])
    assert lines(p) == [("172.18.0.200", "r.local", "apps/r"), ("fd00::200", "r.local", "apps/r")]
    assert p.considered == 1  # Gateways lend addresses, they are not considered themselves


def test_route_whose_gateway_has_no_address_or_is_missing_is_pending():
    r = sources.route_snapshot(sources.HTTPROUTE, route())
    assert plan([r]).pending == ("apps/r",)
    gw = sources.snapshot(sources.GATEWAY, gateway(addresses=()))
    assert plan([gw, r]).pending == ("apps/r",)
    not_accepted = sources.route_snapshot(sources.HTTPROUTE, route(parents=(("infra", "gw", "False"),)))
    assert plan([sources.snapshot(sources.GATEWAY, gateway()), not_accepted]).pending == ("apps/r",)


def test_route_parent_namespace_defaults_to_the_routes_namespace():
    body = route(ns="apps")
    del body["spec"]["parentRefs"][0]["namespace"]
    del body["status"]["parents"][0]["parentRef"]["namespace"]
    r = sources.route_snapshot(sources.HTTPROUTE, body)
    assert r.parents == (gateway_ref("apps", "gw"),)
    p = plan(
        [
            sources.snapshot(sources.GATEWAY, gateway(ns="apps")),
            sources.snapshot(sources.GATEWAY, gateway(ns="infra")),
            r,
        ]
    )
    assert p.entries and all(e.owner == "apps/r" for e in p.entries)


def test_route_with_a_hostname_gateway_address_uses_the_resolver():
    gw = sources.snapshot(sources.GATEWAY, gateway(addresses=(("Hostname", "lb.example"),)))
    r = sources.route_snapshot(sources.GRPCROUTE, route())
    assert lines(plan([gw, r], resolved={"lb.example": ("10.3.3.3",)})) == [("10.3.3.3", "r.local", "apps/r")]
    assert refused(plan([gw, r])) == {("apps/r", "r.local"): UNRESOLVABLE}


def test_route_and_ingress_conflict_by_age():
    gw = sources.snapshot(sources.GATEWAY, gateway())
    r = sources.route_snapshot(sources.HTTPROUTE, route(hostnames=("shared.local",), created=T0))
    ing = snap("ing", ns="web", created=T1, hosts=("shared.local",), ips=("10.0.0.1",))
    p = plan([ing, r, gw])
    assert lines(p) == [("172.18.0.200", "shared.local", "apps/r")]
    assert refused(p) == {("web/ing", "shared.local"): CONFLICT}


def test_ingress_class_filter_does_not_apply_to_routes():
    gw = sources.snapshot(sources.GATEWAY, gateway())
    r = sources.route_snapshot(sources.HTTPROUTE, route())
    p = plan([gw, r], filters=Filters.create(ingress_classes=["nginx"]))
    assert lines(p) == [("172.18.0.200", "r.local", "apps/r")]


# An Istio Gateway (networking.istio.io): the kind and the plural of the Gateway API's, another group.
ISTIO_GATEWAYS = ResourceId("networking.istio.io", "gateways")


def test_a_gateway_of_another_group_lends_nothing_to_gateway_api_routes():
    """Routes name Gateway API Gateways; an object of another group with the same kind, namespace and name
    (even one that lends addresses to its own kind of routes) is not their parent."""
    ours = sources.snapshot(sources.GATEWAY, gateway(addresses=(("IPAddress", "172.18.0.200"),)))
    istio = replace(ours, uid="uid-istio", resource=ISTIO_GATEWAYS, ips=("10.6.6.6",))
    r = sources.route_snapshot(sources.HTTPROUTE, route())
    for order in ([ours, istio, r], [istio, ours, r]):
        assert lines(plan(order)) == [("172.18.0.200", "r.local", "apps/r")]
    assert plan([istio, r]).pending == ("apps/r",)  # without ours, the route has no address


def test_an_object_of_kind_gateway_that_names_hosts_is_planned_like_any_other():
    """Whether an object lends addresses or names hosts is its source's declaration, not its kind."""
    istio = Snapshot(
        "istio-system",
        "ingressgateway",
        "uid-istio",
        T0,
        hosts=("mesh.local",),
        ips=("10.6.6.6",),
        resource=ISTIO_GATEWAYS,
        kind="Gateway",
        api_version="networking.istio.io/v1",
        class_filtered=False,
    )
    p = plan([istio], filters=Filters.create(ingress_classes=["nginx"]))
    assert lines(p) == [("10.6.6.6", "mesh.local", "istio-system/ingressgateway")]
    assert p.considered == 1


def test_two_objects_alike_but_for_their_group_are_two_claims():
    """Same name, namespace, kind and age in two groups: both are planned, the older-by-group one wins a
    shared name, and the block bound shares lines between them as two objects."""
    a = snap("gw", hosts=("one.local", "shared.local"), ips=("10.0.0.1",))
    b = replace(
        a, uid="uid-b", resource=ISTIO_GATEWAYS, hosts=("two.local", "shared.local"), ips=("10.0.0.2",)
    )
    p = plan([b, a])
    assert {(e.hostname, e.address) for e in p.entries} == {
        ("one.local", "10.0.0.1"),
        ("shared.local", "10.0.0.2"),  # networking.istio.io sorts before networking.k8s.io
        ("two.local", "10.0.0.2"),
    }
    assert [(r.host, r.reason, r.uid) for r in p.rejections] == [("shared.local", CONFLICT, "uid-default-gw")]
    bounded = plan([b, a], bounds=Bounds(lines=2))
    assert sorted(e.address for e in bounded.entries) == ["10.0.0.1", "10.0.0.2"]  # a line each
    full = [(r.host, r.uid) for r in bounded.rejections if r.reason == BLOCK_FULL]
    assert full == [("two.local", "uid-b")]  # refused on its own object (its Event goes there)


# ------------------------------------------------------------------------------------------ properties

_label = st.sampled_from(["a", "b", "c", "app", "gw", "dash"])
_host = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _label, st.sampled_from(["local", "test", "example"])),
    st.sampled_from(["*.local", "bad_name.local", "localhost", "x.local."]),
)
_ip = st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1", "172.18.0.3", "not-an-ip"])
_created = st.sampled_from([T0, T1, T2])


@st.composite
def snapshot_sets(draw):
    n = draw(st.integers(min_value=0, max_value=8))
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["ns1", "ns2", "ns3"]), st.sampled_from(["a", "b", "c", "d"])),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    out = []
    for ns, name in keys:
        out.append(
            Snapshot(
                namespace=ns,
                name=name,
                uid=f"{ns}-{name}",
                created=draw(_created),
                hosts=tuple(draw(st.lists(_host, max_size=4))),
                ips=tuple(draw(st.lists(_ip, max_size=2))),
                lb_hostnames=tuple(draw(st.lists(st.sampled_from(["lb.ok", "lb.bad"]), max_size=1))),
                ingress_class=draw(st.sampled_from([None, "nginx", "traefik"])),
            )
        )
    return out


_outside = st.frozensets(st.sampled_from(["localhost", "a.local", "gw.test", "dash.example"]), max_size=3)
_filters = st.builds(
    Filters.create,
    domains=st.lists(st.sampled_from(["local", "test"]), max_size=2),
    ingress_classes=st.lists(st.sampled_from(["nginx", "traefik"]), max_size=1),
)
RESOLVED = {"lb.ok": ("10.0.0.1",)}


@settings(max_examples=300, deadline=None)
@given(snapshot_sets(), _outside, _filters, st.randoms(use_true_random=False))
def test_plan_is_independent_of_input_order(snaps, outside, filters, rnd: random.Random):
    shuffled = list(snaps)
    rnd.shuffle(shuffled)
    kwargs = {"defined_outside": outside, "resolved": RESOLVED, "filters": filters}
    assert plan(snaps, **kwargs) == plan(shuffled, **kwargs)


@settings(max_examples=300, deadline=None)
@given(snapshot_sets(), _outside, _filters)
def test_plan_invariants(snaps, outside, filters):
    p = plan(snaps, defined_outside=outside, resolved=RESOLVED, filters=filters)
    owners: dict[str, set[str]] = {}
    for e in p.entries:
        owners.setdefault(e.hostname, set()).add(e.owner)
        assert e.hostname not in outside
        assert filters.allows_domain(e.hostname)
    # every hostname has exactly one owner, and entries are sorted and unique
    assert all(len(o) == 1 for o in owners.values())
    keys = [(e.hostname, e.address) for e in p.entries]
    assert len(keys) == len(set(keys))
    assert [e.hostname for e in p.entries] == sorted(e.hostname for e in p.entries)
    # a host is never both written for an owner and refused for that same owner
    written = {(e.owner, e.hostname) for e in p.entries}
    assert not written & {(r.owner, r.host) for r in p.rejections}
    # conflicts name the owner that actually holds the host
    for r in p.rejections:
        if r.reason == CONFLICT:
            assert r.host in owners
            (winner,) = owners[r.host]
            assert winner in r.message and winner != r.owner
    # pending owners have no entries and no refusals
    for owner in p.pending:
        assert owner not in {e.owner for e in p.entries} | {r.owner for r in p.rejections}
    # only objects of allowed classes are considered, or refused, or written
    allowed = {s.owner for s in snaps if filters.allows_class(s.ingress_class)}
    assert p.considered == len(allowed)
    assert {e.owner for e in p.entries} | {r.owner for r in p.rejections} | set(p.pending) <= allowed


def _gateway(name: str, ips: tuple[str, ...] = (), **kw) -> Snapshot:
    return Snapshot(
        "gw-ns",
        name,
        f"uid-{name}",
        T0,
        ips=ips,
        resource=sources.GATEWAY.id,
        kind="Gateway",
        api_version="gateway.networking.k8s.io/v1",
        listeners=(Listener("http", protocol="HTTP", namespaces="All"),),
        gateway=ObjectRef(sources.GATEWAY.id, "gw-ns", name),
        lends=True,
        class_filtered=False,
        **kw,
    )


def _route(name: str, host: str, parent: str) -> Snapshot:
    return Snapshot(
        "apps",
        name,
        f"uid-{name}",
        T1,
        hosts=(host,),
        route_hosts=(host,),
        resource=sources.HTTPROUTE.id,
        kind="HTTPRoute",
        api_version="gateway.networking.k8s.io/v1",
        parents=(gateway_ref("gw-ns", parent),),
        class_filtered=False,
    )


def test_an_ignored_gateway_lends_no_addresses():
    p = plan([_gateway("gw", ("10.0.0.1",), ignored=True), _route("r", "r.local", "gw")])
    assert p.entries == () and p.pending == ("apps/r",)


def test_a_gateway_target_annotation_stands_for_its_status_addresses():
    p = plan([_gateway("gw", ("10.0.0.1",), target=("127.0.0.1",)), _route("r", "r.local", "gw")])
    assert [(e.hostname, e.address) for e in p.entries] == [("r.local", "127.0.0.1")]


def test_an_object_names_at_most_the_cap_and_the_rest_is_refused():
    from controller.model import TOO_MANY_HOSTS
    from controller.sync.plan import MAX_HOSTS_PER_OBJECT

    many = tuple(f"h{i}.local" for i in range(MAX_HOSTS_PER_OBJECT + 10))
    p = plan([snap("big", hosts=many), snap("small", ns="other", hosts=("small.local",))])
    written = {e.hostname for e in p.entries}
    assert written == set(many[:MAX_HOSTS_PER_OBJECT]) | {"small.local"}  # the first ones, in their order
    over = [r for r in p.rejections if r.reason == TOO_MANY_HOSTS]
    assert sorted(r.host for r in over) == sorted(many[MAX_HOSTS_PER_OBJECT:])
    assert {r.owner for r in over} == {"default/big"}
    assert f"names {len(many)} hosts" in over[0].message


# ----------------------------------------------------------------------------- addresses and lines per object


def _addrs(n: int, prefix: str = "10.9") -> tuple[str, ...]:
    return tuple(f"{prefix}.{i // 256}.{i % 256}" for i in range(n))


@pytest.mark.parametrize("where", ["status", "target"])
def test_an_object_with_more_addresses_than_the_cap_is_refused_whole(where):
    """256 names x 5,000 addresses made a million lines (57 MB) and held every other object back."""
    hosts = tuple(f"h{i}.huge.local" for i in range(MAX_HOSTS_PER_OBJECT))
    many = _addrs(5000)
    huge = snap("huge", hosts=hosts, ips=many if where == "status" else ("10.0.0.1",))
    if where == "target":
        huge = replace(huge, target=many)
    p = plan([huge, snap("small", ns="other", hosts=("small.local",))])
    assert lines(p) == [("10.0.0.1", "small.local", "other/small")]
    assert refused(p) == {("default/huge", h): TOO_MANY_ADDRESSES for h in hosts}
    message = p.rejections[0].message
    assert "5,000 addresses" in message and f"at most {MAX_ADDRESSES_PER_OBJECT}" in message
    assert len(message) < 300


def test_the_address_cap_counts_distinct_addresses_and_allows_exactly_the_cap():
    exactly = _addrs(MAX_ADDRESSES_PER_OBJECT)
    p = plan([snap(hosts=("a.local",), ips=exactly + exactly)])  # repeated entries count once
    assert len(p.entries) == MAX_ADDRESSES_PER_OBJECT and p.rejections == ()
    p = plan([snap(hosts=("a.local",), ips=_addrs(MAX_ADDRESSES_PER_OBJECT + 1))])
    assert p.entries == () and refused(p) == {("default/web", "a.local"): TOO_MANY_ADDRESSES}


def test_lb_hostnames_that_resolve_to_too_many_addresses_are_refused():
    resolved = {"lb-a.example": _addrs(10, "10.1"), "lb-b.example": _addrs(10, "10.2")}
    p = plan([snap(ips=(), lb_hostnames=("lb-a.example", "lb-b.example"))], resolved=resolved)
    assert p.entries == () and refused(p) == {("default/web", "app.local"): TOO_MANY_ADDRESSES}


def test_names_times_addresses_is_capped_the_first_names_in_order_are_written():
    hosts = tuple(f"h{i:03d}.local" for i in range(100))
    ips = _addrs(MAX_ADDRESSES_PER_OBJECT)
    p = plan([snap(hosts=tuple(reversed(hosts)), ips=ips), snap("small", ns="other", hosts=("s.local",))])
    allowed = MAX_LINES_PER_OBJECT // MAX_ADDRESSES_PER_OBJECT
    assert {e.hostname for e in p.entries if e.owner == "default/web"} == set(hosts[:allowed])
    assert sum(e.owner == "default/web" for e in p.entries) == MAX_LINES_PER_OBJECT
    assert refused(p) == {("default/web", h): TOO_MANY_ADDRESSES for h in hosts[allowed:]}
    assert ("10.0.0.1", "s.local", "other/small") in lines(p)


def test_refused_names_do_not_count_towards_the_line_cap():
    bad = tuple(f"bad_{i}.local" for i in range(100))
    good = tuple(f"g{i:03d}.local" for i in range(MAX_LINES_PER_OBJECT // MAX_ADDRESSES_PER_OBJECT))
    p = plan([snap(hosts=bad + good, ips=_addrs(MAX_ADDRESSES_PER_OBJECT))])
    assert {e.hostname for e in p.entries} == set(good)
    assert set(refused(p).values()) == {INVALID_HOSTNAME}


def test_lookups_skip_objects_that_cannot_use_their_lb_hostnames():
    names = tuple(f"lb{i}.example" for i in range(MAX_ADDRESSES_PER_OBJECT + 1))
    snaps = [
        snap("ok", hosts=("ok.local",), ips=(), lb_hostnames=("ok.example", "ok.example")),
        snap("many", hosts=("many.local",), ips=(), lb_hostnames=names),  # refused unresolved
        replace(
            snap("target", hosts=("t.local",), ips=(), lb_hostnames=("t.example",)), target=("10.0.0.9",)
        ),
        replace(snap("ignored", ips=(), lb_hostnames=("i.example",)), ignored=True),
    ]
    assert lookups(snaps) == {"ok.example": "Ingress default/ok"}  # with the object it is looked up for
    p = plan(snaps, resolved={"ok.example": ("10.0.0.5",)})
    assert lines(p) == [("10.0.0.5", "ok.local", "default/ok"), ("10.0.0.9", "t.local", "default/target")]
    assert refused(p) == {("default/many", "many.local"): TOO_MANY_ADDRESSES}


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=MAX_HOSTS_PER_OBJECT + 20),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=3),
)
def test_an_objects_lines_are_bounded_and_every_name_is_written_or_refused(n_hosts, n_addrs, n_invalid):
    hosts = tuple(f"h{i}.local" for i in range(n_hosts)) + tuple(f"bad_{i}.local" for i in range(n_invalid))
    p = plan([snap(hosts=hosts, ips=_addrs(n_addrs))])
    assert len(p.entries) <= MAX_LINES_PER_OBJECT
    assert len({e.address for e in p.entries}) <= MAX_ADDRESSES_PER_OBJECT
    written = {e.hostname for e in p.entries}
    assert written.isdisjoint(r.host for r in p.rejections)
    assert written | {r.host for r in p.rejections} == set(hosts)
    if n_addrs <= MAX_ADDRESSES_PER_OBJECT:  # as many names as the line cap allows are written
        valid = min(n_hosts, MAX_HOSTS_PER_OBJECT)
        assert len(written) == min(valid, MAX_LINES_PER_OBJECT // n_addrs)
    else:
        assert written == set()


@pytest.mark.parametrize(
    "spec_refs",
    [
        [{"name": "gw", "namespace": "infra", "sectionName": "http"}],
        [{"name": "other", "namespace": "infra"}, {"name": "gw", "namespace": "infra", "port": 80}],
        [{"name": "gw", "namespace": "infra", "group": "gateway.networking.k8s.io", "kind": "Gateway"}],
    ],
)
def test_route_still_naming_its_gateway_in_spec_is_attached(spec_refs):
    body = route()
    body["spec"]["parentRefs"] = spec_refs
    r = sources.route_snapshot(sources.HTTPROUTE, body)
    assert [p.whole for p in r.parents] == [gateway_ref("infra", "gw")]  # with its sectionName or port
    assert lines(plan([sources.snapshot(sources.GATEWAY, gateway()), r])) == [
        ("172.18.0.200", "r.local", "apps/r")
    ]


@pytest.mark.parametrize(
    "spec_refs",
    [
        [{"name": "elsewhere", "namespace": "infra"}],  # moved to a Gateway no controller serves
        [{"name": "gw"}],  # now the route's own namespace's gw, not infra's
        [{"name": "gw", "namespace": "infra", "group": "", "kind": "Service"}],  # not a Gateway
        [],
    ],
)
def test_stale_parent_status_without_its_spec_parent_ref_is_no_attachment(spec_refs):
    """Traefik v3.6 leaves its Accepted status behind when parentRefs move away from its Gateways: that
    entry names a Gateway the spec no longer does, so the route is detached and its names leave the file."""
    body = route()
    body["spec"]["parentRefs"] = spec_refs
    r = sources.route_snapshot(sources.HTTPROUTE, body)
    assert r.parents == ()
    p = plan([sources.snapshot(sources.GATEWAY, gateway()), r])
    assert p.entries == ()
    assert p.pending == ("apps/r",)


# ------------------------------------------------------------------------------------ the block's bound


def entry_bytes(entries) -> int:
    """The block's bytes without its BEGIN and END lines, as written with LF line ends."""
    block = render_block(entries, "M")
    return len(block) - len(render_block([], "M"))


def test_fair_shares_serve_small_demands_whole_and_split_the_rest_equally_oldest_first():
    assert fair_shares({"a": 5, "b": 100, "c": 100}, 50, ["a", "b", "c"]) == {"a": 5, "b": 23, "c": 22}
    assert fair_shares({"a": 5, "b": 100, "c": 100}, 50, ["c", "b", "a"]) == {"a": 5, "b": 22, "c": 23}
    assert fair_shares({"a": 1, "b": 1, "c": 1}, 2, ["b", "a", "c"]) == {"a": 1, "b": 1, "c": 0}
    assert fair_shares({"a": 3, "b": 4}, 100, ["a", "b"]) == {"a": 3, "b": 4}


def greedy_objects(count: int, ns: str = "load") -> list[Snapshot]:
    """Objects at the per-object caps: 16 addresses x 64 names = 1,024 lines each."""
    return [
        snap(
            f"greedy-{i:03d}",
            ns=ns,
            created=T0,
            hosts=tuple(f"h{j:02d}.greedy-{i:03d}.test" for j in range(64)),
            ips=_addrs(MAX_ADDRESSES_PER_OBJECT),
        )
        for i in range(count)
    ]


def test_150_objects_at_the_caps_leave_the_block_within_its_bound_and_an_unrelated_object_whole():
    unrelated = snap("web", ns="other", created=T2, hosts=("web.other.test",), ips=("10.9.9.9",))
    p = plan([*greedy_objects(150), unrelated])
    assert len(p.entries) <= MAX_BLOCK_LINES and entry_bytes(p.entries) <= MAX_BLOCK_BYTES
    assert p.size == entry_bytes(p.entries)
    assert ("10.9.9.9", "web.other.test", "other/web") in lines(p)
    assert ("other/web", "web.other.test") not in refused(p)
    # equal shares: every greedy object keeps the same number of names, the first ones in sorted order
    per_owner: dict[str, set[str]] = {}
    for e in p.entries:
        per_owner.setdefault(e.owner, set()).add(e.hostname)
    kept = {len(v) for k, v in per_owner.items() if k != "other/web"}
    assert len(per_owner) == 151 and len(kept) == 1 and kept.pop() > 0
    assert per_owner["load/greedy-000"] == {
        f"h{j:02d}.greedy-000.test" for j in range(len(per_owner["load/greedy-000"]))
    }
    full = [r for r in p.rejections if r.reason == BLOCK_FULL]
    assert {r.owner for r in full} == {f"load/greedy-{i:03d}" for i in range(150)}
    assert "--max-block-lines" in full[0].message


def test_the_bytes_bound_applies_too():
    long_names = [
        snap(f"o{i}", hosts=tuple(f"{'x' * 60}-{j}.o{i}.test" for j in range(10)), ips=("10.0.0.1",))
        for i in range(5)
    ]
    p = plan(long_names, bounds=Bounds(lines=10_000, bytes=2_000))
    assert 0 < entry_bytes(p.entries) <= 2_000
    assert {r.reason for r in p.rejections} == {BLOCK_FULL}


_object_sizes = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=4)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    _object_sizes,
    st.integers(min_value=1, max_value=200),
    st.integers(min_value=1, max_value=8_000),
    st.randoms(use_true_random=False),
)
def test_the_block_never_exceeds_its_bounds_and_an_object_within_its_share_is_never_refused(
    sizes, max_lines, max_bytes, rnd: random.Random
):
    snaps = [
        snap(
            f"o{i}",
            ns=f"ns{i % 3}",
            created=[T0, T1, T2][i % 3],
            hosts=tuple(f"n{j}.o{i}.test" for j in range(names)),
            ips=_addrs(addrs),
        )
        for i, (names, addrs) in enumerate(sizes)
    ]
    bounds = Bounds(lines=max_lines, bytes=max_bytes)
    p = plan(snaps, bounds=bounds)
    assert len(p.entries) <= max_lines
    assert p.size == entry_bytes(p.entries) <= max_bytes
    written = {(e.owner, e.hostname) for e in p.entries}
    for s in snaps:  # every name is written or refused, never dropped in silence
        assert {(s.owner, h) for h in s.hosts} <= written | {(r.owner, r.host) for r in p.rejections}
    for s in snaps:  # a share of an equal split is never cut because of the others
        own = [e for e in plan([s], bounds=Bounds(10**9, 10**9)).entries]
        if len(own) <= max_lines // len(snaps) and entry_bytes(own) <= max_bytes // len(snaps):
            assert {(s.owner, h) for h in s.hosts} <= written
    shuffled = list(snaps)
    rnd.shuffle(shuffled)
    assert plan(shuffled, bounds=bounds) == p  # the same on every node and every restart
