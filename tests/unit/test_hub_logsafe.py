"""devhub.logsafe: a newline in request input cannot start a forged hub log line."""

import logging

from devhub import logsafe


def test_request_input_stays_on_its_line(caplog):
    logsafe.install()
    logsafe.install()  # idempotent
    log = logging.getLogger("JupyterHub")
    with caplog.at_level(logging.INFO):
        log.warning("No such user: %s", "x\n[I 2026-11-22 04:00:00.000 JupyterHub auth] User bob logged in\r\x1b[2J")
        log.info("plain %s line", "one")
    forged, plain = caplog.records[-2:]
    assert forged.getMessage() == ("No such user: x\\n[I 2026-11-22 04:00:00.000 JupyterHub auth] User bob logged in"
                                   "\\r\\x1b[2J")
    assert not any(line.startswith("[I 2026-11-22 04:00") for line in caplog.text.splitlines())
    assert plain.getMessage() == "plain one line" and plain.args == ("one",)  # untouched when clean


def test_tracebacks_keep_their_lines(caplog):
    logsafe.install()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("JupyterHub").exception("failed for %s", "alice")
    assert "Traceback (most recent call last):\n" in caplog.text and "ValueError: boom" in caplog.text
