"""Declaration files decoded by msgspec Structs: what the hand validation let through is refused
now, each with a one-line message naming the file (and, in the foundation model, the line)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from caravan_workspace.foundation import FoundationError, parse_foundation
from caravan_workspace.services import DeclarationError, load_service, load_services


@pytest.fixture
def service_folder(repo_root: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "svc-a"
    folder.mkdir()
    shutil.copy(repo_root / "svc-a" / "service.toml", folder / "service.toml")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('title = "Catalog"', "title = 5", "'title' has the wrong type (int)"),
        ('lane = "a"', "lane = true", "'lane' has the wrong type (bool)"),
        ("min = 1,", 'min = "1",', "scaling needs integer min, max and instances"),
        ("min = 1,", "min = 1.0,", "scaling needs integer min, max and instances"),
        ("min = 1,", "min = 1, step = 2,", "scaling needs integer min, max and instances"),
        ('live = "/health/live"', "live = 5", "health must have exactly 'live' and 'ready' paths"),
        ('name = "svc-a"', "name = 3", "name 3 must be the folder name"),
        ("depends_on = []", "depends_on = [1]", "depends_on must list service names"),
        ('title = "Catalog"', 'title = "Catalog"\ncolour = "red"', "unknown key 'colour'"),
        ('title = "Catalog"\n', "", "missing key 'title'"),
    ],
)
def test_a_bad_service_declaration_is_refused_in_one_line(service_folder, old, new, message):
    path = service_folder / "service.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(DeclarationError, match=rf"^svc-a/service\.toml: {re.escape(message)}") as caught:
        load_service(service_folder)
    assert "\n" not in str(caught.value)


def header_line(text: str, needle: str) -> int:
    """The line of the table header above the first line holding ``needle``."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines, start=1) if needle in line)
    return max(i for i, line in enumerate(lines[:at], start=1) if line.startswith("["))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('[[tier]]\nname = "edge"', '[[tier]]\ncolour = 1\nname = "edge"', "unknown key 'colour'"),
        ('[[flow]]\nfrom = "client"', '[[flow]]\nvia = 1\nfrom = "client"', "unknown key 'via'"),
        ('external = ["client"]', 'external = "client"', "external must list members of the tier"),
        ("port_range = [18000, 18999]", "port_range = [18000, true]", "ports must be [first, last]"),
    ],
)
def test_a_bad_foundation_table_is_refused_naming_its_line(repo_root, old, new, message):
    text = (repo_root / "foundation" / "foundation.toml").read_text()
    assert old in text, old
    broken = text.replace(old, new, 1)
    line = header_line(broken, new.splitlines()[-1])
    with pytest.raises(FoundationError, match=rf"^foundation\.toml line {line}: {re.escape(message)}$"):
        parse_foundation(broken, load_services(repo_root))


def test_a_foundation_list_of_tables_that_is_not_one_is_refused(repo_root):
    text = (repo_root / "foundation" / "foundation.toml").read_text().replace("[[tier]]", "[[tiers]]")
    with pytest.raises(FoundationError, match=r"^foundation\.toml: 'tier' has the wrong type \(int\)$"):
        parse_foundation("tier = 3\n" + text, load_services(repo_root))
