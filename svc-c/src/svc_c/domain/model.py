"""Entities and value objects of Payments. Start here: plain classes, no I/O."""

from __future__ import annotations
