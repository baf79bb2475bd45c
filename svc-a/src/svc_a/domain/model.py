"""Entities and value objects of Catalog. Start here: plain classes, no I/O."""

from __future__ import annotations
