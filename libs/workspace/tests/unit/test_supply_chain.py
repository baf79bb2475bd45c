"""The supply-chain audit's verdicts: a fixable vulnerability fails, an unfixed one warns, an
unaudited dependency fails; the workspace's own packages are not looked up on PyPI."""

from caravan_workspace.supply_chain import read_report, third_party


def test_a_vulnerability_with_a_fix_fails_and_one_without_warns() -> None:
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
            },
            {
                "name": "ecdsa",
                "version": "0.19.0",
                "vulns": [{"id": "GHSA-wj6h-64fc-37mp", "fix_versions": []}],
            },
            {"name": "msgspec", "version": "0.19.0", "vulns": []},
        ]
    }
    found = read_report(report)
    assert found.fixable == ["jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)"]
    assert found.unfixed == ["ecdsa 0.19.0: GHSA-wj6h-64fc-37mp (no fixed version yet)"]
    assert found.not_audited == []


def test_a_dependency_that_could_not_be_audited_is_reported() -> None:
    found = read_report({"dependencies": [{"name": "x", "skip_reason": "Dependency not found on PyPI"}]})
    assert found.not_audited == ["x: Dependency not found on PyPI"]


def test_the_workspaces_own_packages_are_not_sent_to_pypi() -> None:
    compiled = "# via x\ncaravan-commons==0.3.0\n    # via svc-a\nhttpx==0.28.1\n\nCaravan-Gateway==0.1.0\n"
    assert third_party(compiled) == "httpx==0.28.1\n"
