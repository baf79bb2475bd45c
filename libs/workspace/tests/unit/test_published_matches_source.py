"""The stage-3 check that a published commons version still matches its source."""

from caravan_workspace.stages.commons import differing_files


def tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_identical_trees_match_whatever_the_caches(tmp_path):
    files = {"__init__.py": "x = 1\n", "sub/mod.py": "y = 2\n", "py.typed": ""}
    source = tree(tmp_path / "src", {**files, ".hypothesis/db": "cache", "__pycache__/a.pyc": "b"})
    installed = tree(tmp_path / "site", {**files, "__pycache__/a.cpython-311.pyc": "c"})
    assert differing_files(source, installed) == []


def test_a_changed_added_or_removed_file_is_named(tmp_path):
    source = tree(tmp_path / "src", {"__init__.py": "x = 1\n", "app.py": "new\n", "added.py": ""})
    installed = tree(tmp_path / "site", {"__init__.py": "x = 1\n", "app.py": "old\n", "gone.py": ""})
    assert differing_files(source, installed) == ["added.py", "app.py", "gone.py"]
