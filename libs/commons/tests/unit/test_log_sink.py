"""BufferedSink: lines are held until the interval passes, a WARNING arrives or the sink stops."""

from __future__ import annotations

import io

from loguru import logger

from caravan_commons.log_sink import BufferedSink, flush_logs


def test_lines_wait_for_a_warning_or_the_stop_and_none_is_lost() -> None:
    stream = io.StringIO()
    sink = BufferedSink(stream, interval=60)
    handler = logger.add(sink, format="{message}")
    try:
        logger.info("one")
        logger.info("two")
        assert stream.getvalue() == ""  # held
        logger.warning("three")  # WARNING and worse go out at once, with what was held
        assert stream.getvalue().splitlines() == ["one", "two", "three"]
        logger.info("four")
        flush_logs()
        assert stream.getvalue().splitlines()[-1] == "four"
        logger.info("five")
    finally:
        logger.remove(handler)  # loguru stops the sink: what is left is written
    assert stream.getvalue().splitlines() == ["one", "two", "three", "four", "five"]


def test_without_an_interval_every_line_is_written_at_once() -> None:
    stream = io.StringIO()
    sink = BufferedSink(stream, interval=0)
    sink.write("a\n")
    assert stream.getvalue() == "a\n"
    sink.stop()
