"""Write the container's authorized_keys to stdout from what the spawner passed.

Contract (see images/dev-gpu/README.md):
  DEVHUB_SSH_AUTHORIZED_KEYS       public keys, one per line
  DEVHUB_SSH_AUTHORIZED_KEYS_FILE  path of a file with more keys, same format (e.g. a read-only mount)
Each line is validated by ssh_keys (the same module the hub uses); refused lines are reported on
stderr with the reason and left out. No keys at all is valid: sshd runs and nobody can log in.
"""

import os
import sys

from ssh_keys import parse_authorized_keys


def main() -> int:
    text = os.environ.get("DEVHUB_SSH_AUTHORIZED_KEYS", "")
    path = os.environ.get("DEVHUB_SSH_AUTHORIZED_KEYS_FILE", "")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text += "\n" + f.read()
        except OSError as exc:
            print(f"devhub-start: cannot read DEVHUB_SSH_AUTHORIZED_KEYS_FILE: {exc.strerror}", file=sys.stderr)
    keys, errors = parse_authorized_keys(text)
    for error in errors:
        print(f"devhub-start: authorized key refused, {error}", file=sys.stderr)
    for key in keys:
        print(key.line)
    print(f"devhub-start: {len(keys)} authorized SSH key(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
