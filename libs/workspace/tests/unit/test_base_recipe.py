"""The base image's recipe: its tag carries a digest of everything that shapes the image."""

from __future__ import annotations

import dataclasses

from caravan_workspace.images.base import DEFAULT_MIRROR, MIRROR_ENV, REPOSITORY, Recipe, default_recipe


def test_tag_names_the_repository_suite_and_digest() -> None:
    recipe = Recipe()
    assert recipe.tag == f"{REPOSITORY}:bookworm-py311-{recipe.digest}"
    assert len(recipe.digest) == 12


def test_the_same_recipe_gives_the_same_tag() -> None:
    assert Recipe().tag == Recipe().tag


def test_every_ingredient_changes_the_digest() -> None:
    base = Recipe()
    variants = [
        dataclasses.replace(base, suite="trixie"),
        dataclasses.replace(base, packages=(*base.packages, "curl")),
        dataclasses.replace(base, trim=base.trim[:-1]),
        dataclasses.replace(base, mirror="http://mirror.example/debian"),
        dataclasses.replace(base, version=base.version + 1),
    ]
    digests = {v.digest for v in variants}
    assert base.digest not in digests
    assert len(digests) == len(variants)


def test_the_mirror_comes_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert default_recipe().mirror == DEFAULT_MIRROR
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/debian")
    assert default_recipe().mirror == "http://mirror.example/debian"


def test_python_venv_and_pip_are_in_the_recipe() -> None:
    assert {"python3.11", "python3.11-venv", "python3-pip", "ca-certificates"} <= set(Recipe().packages)
