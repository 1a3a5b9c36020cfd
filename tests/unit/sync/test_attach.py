"""Gateway API attachment (controller/sync/attach.py): the hostname intersection table, listener selection,
allowedRoutes, ListenerSets, and the planner's lines that follow from them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.cluster import sources
from controller.model import WILDCARD, Listener, ObjectRef, Selector, Snapshot
from controller.sync.attach import EVERY_NAME, intersect, selects
from controller.sync.plan import plan

T0, T1 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"

# (route hostname, listener hostname, the name served; None: they do not meet). The spec's own examples
# (HTTPRoute.spec.hostnames and Listener.hostname) first.
TABLE = [
    (None, "test.example.com", "test.example.com"),
    ("test.example.com", "test.example.com", "test.example.com"),
    ("*.example.com", "test.example.com", "test.example.com"),
    (None, "*.example.com", "*.example.com"),
    ("*.example.com", "*.example.com", "*.example.com"),
    ("test.example.com", "*.example.com", "test.example.com"),
    ("foo.test.example.com", "*.example.com", "foo.test.example.com"),
    ("example.com", "*.example.com", None),
    ("test.example.net", "*.example.com", None),
    ("test.example.com", None, "test.example.com"),
    ("*.example.com", None, "*.example.com"),
    (None, None, EVERY_NAME),
    # two wildcards: the narrower one
    ("*.a.example.com", "*.example.com", "*.a.example.com"),
    # not a suffix on a label boundary
    ("*.example.com", "badexample.com", None),
    ("test.badexample.com", "*.example.com", None),
    ("other.example.com", "test.example.com", None),
    # case does not matter; the name written is lowercase
    ("Test.Example.COM", "test.example.com", "test.example.com"),
    ("*.EXAMPLE.com", "Shop.Example.Com", "shop.example.com"),
    # internationalised names compare in their ASCII form
    ("bücher.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("*.example", "BÜCHER.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "*.example", "xn--bcher-kva.example"),
]


@pytest.mark.parametrize(("route", "listener", "served"), TABLE)
def test_intersection_table_both_directions(route, listener, served):
    assert intersect(route, listener) == served
    assert intersect(listener, route) == served  # the rule is symmetric: the more specific name


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=5)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
HOST = st.one_of(NAME, NAME.map(lambda n: "*." + n))


def _matches(pattern: str, name: str) -> bool:
    """Does ``pattern`` (concrete or ``*.suffix``) cover the concrete ``name``? (The spec's wording.)"""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:]) and len(name) > len(pattern) - 1
    return name == pattern


@given(HOST, HOST)
def test_the_name_served_is_covered_by_both_sides(route, listener):
    served = intersect(route, listener)
    assert served == intersect(listener, route)
    if served is None:
        return
    assert served in (route, listener)
    if "*" not in served:  # a concrete name: both hostnames cover it
        assert _matches(route, served) and _matches(listener, served)


@given(NAME, NAME)
def test_concrete_names_meet_only_when_equal(a, b):
    assert (intersect(a, b) is not None) == (a == b)


@given(NAME, LABEL)
def test_a_wildcard_never_matches_its_own_suffix(suffix, label):
    assert intersect("*." + suffix, suffix) is None
    assert intersect("*." + suffix, f"{label}.{suffix}") == f"{label}.{suffix}"


def test_label_selectors():
    labels = {"env": "prod", "team": "web"}
    assert selects(Selector(), labels)
    assert selects(Selector(labels=(("env", "prod"),)), labels)
    assert not selects(Selector(labels=(("env", "dev"),)), labels)
    assert selects(Selector(expressions=(("env", "In", ("prod", "dev")),)), labels)
    assert not selects(Selector(expressions=(("env", "NotIn", ("prod",)),)), labels)
    assert selects(Selector(expressions=(("team", "Exists", ()),)), labels)
    assert not selects(Selector(expressions=(("team", "DoesNotExist", ()),)), labels)
    assert not selects(Selector(expressions=(("team", "Bogus", ()),)), labels)


# ---- the planner's lines ---------------------------------------------------------------------------------


def gateway(name: str, ip: str, *listeners: Listener, ns: str = "infra", **kw) -> Snapshot:
    return Snapshot(
        ns,
        name,
        f"uid-{name}",
        T0,
        ips=(ip,),
        resource=sources.GATEWAY.id,
        kind="Gateway",
        api_version="gateway.networking.k8s.io/v1",
        listeners=listeners,
        gateway=ObjectRef(sources.GATEWAY.id, ns, name),
        lends=True,
        class_filtered=False,
        **kw,
    )


def route(
    hosts: tuple[str, ...],
    *parents: ObjectRef,
    ns: str = "apps",
    resource: sources.Resource = sources.HTTPROUTE,
    **kw,
) -> Snapshot:
    return Snapshot(
        ns,
        "r",
        "uid-r",
        T1,
        hosts=hosts,
        route_hosts=hosts,
        resource=resource.id,
        kind=resource.kind,
        api_version=resource.api_version,
        parents=parents,
        class_filtered=False,
        **kw,
    )


def listener(name: str = "http", hostname: str | None = None, port: int = 80, **kw) -> Listener:
    """A listener open to every namespace that takes the routes of its protocol (as the reader fills them)."""
    protocol = kw.pop("protocol", "HTTP")
    kinds = kw.pop("kinds", sources.PROTOCOL_ROUTES.get(protocol))
    return Listener(
        name, hostname=hostname, port=port, protocol=protocol, namespaces="All", kinds=kinds, **kw
    )


def gw(name: str, **kw) -> ObjectRef:
    return ObjectRef(sources.GATEWAY.id, "infra", name, **kw)


def namespace(name: str, labels: tuple[tuple[str, str], ...]) -> Snapshot:
    return Snapshot(
        "",
        name,
        f"uid-{name}",
        T0,
        resource=sources.NAMESPACE.id,
        kind="Namespace",
        api_version="v1",
        lends=True,
        class_filtered=False,
        labels=labels,
    )


def lines(p) -> set[tuple[str, str]]:
    return {(e.hostname, e.address) for e in p.entries}


def test_each_name_goes_to_the_gateway_whose_listener_serves_it():
    p = plan(
        [
            gateway("one", "1.2.3.4", listener(hostname="*.one.internal")),
            gateway("two", "2.3.4.5", listener(hostname="*.two.internal")),
            route(("test.one.internal", "test.two.internal"), gw("one"), gw("two")),
        ]
    )
    assert lines(p) == {("test.one.internal", "1.2.3.4"), ("test.two.internal", "2.3.4.5")}
    assert p.rejections == () and p.notes == () and p.considered == 1


def test_a_name_two_gateways_serve_gets_both_and_is_noted():
    p = plan(
        [
            gateway("one", "1.2.3.4", listener(hostname="*.example.com")),
            gateway("two", "2.3.4.5", listener(hostname="shop.example.com")),
            route(("shop.example.com",), gw("one"), gw("two")),
        ]
    )
    assert lines(p) == {("shop.example.com", "1.2.3.4"), ("shop.example.com", "2.3.4.5")}
    (note,) = p.notes
    assert "shop.example.com" in note and "infra/one" in note and "infra/two" in note


@pytest.mark.parametrize("hosts", [(), ("*.example.com",)])
def test_a_route_inherits_a_concrete_listener_hostname(hosts):
    p = plan([gateway("gw", "1.2.3.4", listener(hostname="shop.example.com")), route(hosts, gw("gw"))])
    assert lines(p) == {("shop.example.com", "1.2.3.4")}
    assert p.rejections == ()


@pytest.mark.parametrize(
    ("hosts", "listener_host", "refused_host"),
    [
        ((), None, EVERY_NAME),
        ((), "*.example.com", "*.example.com"),
        (("*.a.example.com",), "*.example.com", "*.a.example.com"),
    ],
)
def test_wildcard_results_are_refused_naming_the_listener(hosts, listener_host, refused_host):
    p = plan([gateway("gw", "1.2.3.4", listener("web", hostname=listener_host)), route(hosts, gw("gw"))])
    assert p.entries == () and p.pending == ()
    (rejection,) = p.rejections
    assert (rejection.host, rejection.reason) == (refused_host, WILDCARD)
    assert "Gateway infra/gw listener 'web'" in rejection.message


def test_section_name_and_port_pick_listeners():
    gateways = gateway(
        "gw",
        "1.2.3.4",
        listener("a", hostname="a.example.com", port=80),
        listener("b", hostname="b.example.com", port=8080),
        listener("c", hostname="c.example.com", port=8080),
    )
    assert lines(plan([gateways, route((), gw("gw", section="a"))])) == {("a.example.com", "1.2.3.4")}
    by_port = plan([gateways, route((), gw("gw", port=8080))])
    assert lines(by_port) == {("b.example.com", "1.2.3.4"), ("c.example.com", "1.2.3.4")}
    both = plan([gateways, route((), gw("gw", section="c", port=8080))])
    assert lines(both) == {("c.example.com", "1.2.3.4")}
    assert lines(plan([gateways, route((), gw("gw", section="a", port=8080))])) == set()


def test_allowed_routes_namespaces_same_all_selector():
    def at(namespaces: str, selector: Selector | None = None, labels=()) -> set:
        listen = Listener(
            "http",
            hostname="x.example.com",
            port=80,
            protocol="HTTP",
            namespaces=namespaces,
            selector=selector,
        )
        return lines(plan([gateway("gw", "1.2.3.4", listen), namespace("apps", labels), route((), gw("gw"))]))

    served = {("x.example.com", "1.2.3.4")}
    assert at("Same") == set()  # the route is in apps, the Gateway in infra
    assert at("All") == served
    team = Selector(labels=(("team", "web"),))
    assert at("Selector", team, labels=(("team", "web"),)) == served
    assert at("Selector", team, labels=(("team", "db"),)) == set()
    same = Listener("http", hostname="x.example.com", port=80, protocol="HTTP")
    assert (
        lines(
            plan(
                [
                    gateway("gw", "1.2.3.4", same, ns="apps"),
                    route((), ObjectRef(sources.GATEWAY.id, "apps", "gw")),
                ]
            )
        )
        == served
    )


def test_allowed_routes_kinds_and_protocol():
    def at(listen: Listener, resource: sources.Resource = sources.HTTPROUTE) -> set:
        return lines(plan([gateway("gw", "1.2.3.4", listen), route((), gw("gw"), resource=resource)]))

    served = {("x.example.com", "1.2.3.4")}
    assert at(listener(hostname="x.example.com")) == served
    assert at(listener(hostname="x.example.com"), resource=sources.GRPCROUTE) == served
    assert (
        at(listener(hostname="x.example.com"), resource=sources.TLSROUTE) == set()
    )  # HTTP takes no TLSRoute
    assert at(listener(hostname="x.example.com", protocol="TLS"), resource=sources.TLSROUTE) == served
    grpc_only = listener(hostname="x.example.com", kinds=(sources.GRPCROUTE.id,))
    assert at(grpc_only) == set()
    assert at(grpc_only, resource=sources.GRPCROUTE) == served


def test_a_listener_set_lends_its_listeners_at_its_gateways_addresses():
    owner = gateway("gw", "1.2.3.4", listener(hostname="*.gw.example.com"))
    extra = Snapshot(
        "infra",
        "team",
        "uid-ls",
        T0,
        resource=sources.LISTENERSET.id,
        kind="ListenerSet",
        api_version="gateway.networking.k8s.io/v1",
        listeners=(listener("shop", hostname="shop.example.com"),),
        gateway=ObjectRef(sources.GATEWAY.id, "infra", "gw"),
        lends=True,
        class_filtered=False,
    )
    ref = ObjectRef(sources.LISTENERSET.id, "infra", "team")
    p = plan([owner, extra, route((), ref)])
    assert lines(p) == {("shop.example.com", "1.2.3.4")}
    assert p.considered == 1  # the ListenerSet is no object of its own
    not_accepted = replace(extra, gateway=None)
    assert plan([owner, not_accepted, route((), ref)]).entries == ()


def test_a_routes_annotation_names_go_to_every_gateway_it_attached_to():
    r = Snapshot(
        "apps",
        "r",
        "uid-r",
        T1,
        hosts=("a.one.internal", "alias.local"),
        route_hosts=("a.one.internal",),
        resource=sources.HTTPROUTE.id,
        kind="HTTPRoute",
        api_version="gateway.networking.k8s.io/v1",
        parents=(gw("one"), gw("two")),
        class_filtered=False,
    )
    p = plan(
        [
            gateway("one", "1.2.3.4", listener(hostname="*.one.internal")),
            gateway("two", "2.3.4.5", listener(hostname="*.two.internal")),
            r,
        ]
    )
    assert lines(p) == {("a.one.internal", "1.2.3.4"), ("alias.local", "1.2.3.4"), ("alias.local", "2.3.4.5")}


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("foo.example.org.", "foo.example.org"),
        ("Foo.Example.Org.", "foo.example.org"),
        ("foo.example.org..", None),
        (".", None),
    ],
)
def test_the_hostnames_annotation_takes_an_absolute_name(written, kept):
    body = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u",
            "annotations": {sources.HOSTNAMES: written},
        },
        "spec": {"rules": []},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
    }
    p = plan([sources.snapshot(sources.INGRESS, body)])
    if kept:
        assert lines(p) == {(kept, "10.0.0.1")}
    else:
        assert p.entries == () and [r.reason for r in p.rejections] == ["invalid-hostname"]


def test_a_parent_is_its_resource_not_its_name():
    """A Gateway and a ListenerSet of the same namespace and name: a route names one of them by its resource
    (the ObjectRef's ResourceId), and gets that one's listeners only."""
    owner = gateway("x", "1.2.3.4", listener(hostname="gw.example.com"))
    same_name = replace(
        owner,
        uid="uid-ls",
        resource=sources.LISTENERSET.id,
        kind="ListenerSet",
        ips=(),
        listeners=(listener("shop", hostname="shop.example.com"),),
    )
    as_gateway = plan([owner, same_name, route((), gw("x"))])
    assert lines(as_gateway) == {("gw.example.com", "1.2.3.4")}
    as_set = plan([owner, same_name, route((), ObjectRef(sources.LISTENERSET.id, "infra", "x"))])
    assert lines(as_set) == {("shop.example.com", "1.2.3.4")}
