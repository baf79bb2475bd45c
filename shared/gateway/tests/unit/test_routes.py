import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_gateway.routes import RouteError, RouteTable

segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_~", min_size=1, max_size=8)
services = st.lists(segment, min_size=1, max_size=5, unique=True)


def table_for(names):
    return RouteTable.from_declarations((name, [f"/api/{name}"]) for name in names)


@given(services, st.data())
def test_a_path_under_a_prefix_reaches_its_service_with_the_prefix_stripped(names, data):
    table = table_for(names)
    name = data.draw(st.sampled_from(names))
    rest = data.draw(st.lists(segment, max_size=4))
    match = table.match("/".join([f"/api/{name}", *rest]))
    assert match is not None
    assert match.service == name
    assert match.upstream_path == "/" + "/".join(rest)


@given(services, segment)
def test_a_path_outside_every_prefix_matches_nothing(names, other):
    table = table_for(names)
    path = f"/api/{other}x" if other in names else f"/api/{other}"
    for name in names:
        if path == f"/api/{name}" or path.startswith(f"/api/{name}/"):
            return
    assert table.match(path) is None


@given(services, st.data())
def test_prefixes_match_whole_segments_only(names, data):
    name = data.draw(st.sampled_from(names))
    table = RouteTable.from_declarations([(name, [f"/api/{name}"])])
    assert table.match(f"/api/{name}extra/x") is None


@given(services, st.sampled_from([".", ".."]))
def test_dot_segments_never_route(names, dots):
    table = table_for(names)
    assert table.match(f"/api/{names[0]}/{dots}/x") is None


def test_longest_prefix_wins():
    table = RouteTable({"/api/svc-a": "svc-a", "/api/svc-a/admin": "ops"})
    assert table.match("/api/svc-a/admin/x").service == "ops"
    assert table.match("/api/svc-a/products").service == "svc-a"


@pytest.mark.parametrize("prefix", ["api", "/", "/api/", "/api//x", "/api/../x"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(RouteError):
        RouteTable({prefix: "svc"})


def test_a_prefix_declared_twice_is_refused():
    with pytest.raises(RouteError, match="declared by both svc-a and svc-b"):
        RouteTable.from_declarations([("svc-a", ["/api/x"]), ("svc-b", ["/api/x"])])


@given(st.lists(st.tuples(segment, st.lists(segment, min_size=1, max_size=3, unique=True)), max_size=5))
def test_services_lists_each_declaring_service_once(declared):
    routes: dict[str, str] = {}
    for service, prefixes in declared:
        for prefix in prefixes:
            routes.setdefault(f"/api/{service}/{prefix}", service)
    table = RouteTable(routes)
    assert table.services == sorted(set(routes.values()))
    for prefix, service in routes.items():
        assert table.match(prefix + "/x").service == service
