"""Wake supervisord's first poll so it starts its programs at once.

supervisord's main loop blocks up to 1 s in its first poll before it spawns any program; a
connection to its control socket ends that wait (a request whose answer is read to the end, so
supervisord has nothing to complain about). This runs in the background from devhub-start and
gives up quietly after 5 s (the only cost of failing is the 1 s that it would have saved).
"""

import os
import socket
import sys
import time

path = os.path.join(os.environ["DEVHUB_RUN"], "supervisor.sock")
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            # Read the answer to its end: closing first makes supervisord log a BrokenPipeError.
            s.settimeout(5)
            while s.recv(65536):
                pass
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
