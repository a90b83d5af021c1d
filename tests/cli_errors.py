"""What every refused command line must look like: exit status 2 and one line on stderr."""

from __future__ import annotations


def assert_one_line_error(result, *needles: str) -> None:
    """``result`` (the ``cli`` fixture's) exited 2 with one ``error:`` line holding every needle,
    and no traceback."""
    assert result.code == 2, (result.out, result.err)
    message = result.err.strip()
    assert message.startswith("error:"), message
    assert "Traceback" not in result.err
    assert len(message.splitlines()) == 1, message
    for needle in needles:
        assert needle in message, (needle, message)
