"""Entities and value objects of Orders. Start here: plain classes, no I/O."""

from __future__ import annotations
