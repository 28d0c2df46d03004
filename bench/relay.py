"""The SMTP sandbox in a process of its own (``python -m bench.relay``), so a sender measured
in another process never shares an interpreter with the server it sends to.

Prints ``PORT`` once it listens; then answers each line on standard input: ``count`` with
the number of messages accepted so far, ``clear`` by forgetting them; at end of input it
stops.
"""

from __future__ import annotations

import sys

from channels.sandbox.smtp import SmtpSandbox


def main() -> None:
    relay = SmtpSandbox().start()
    try:
        print(relay.port, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(len(relay.messages), flush=True)
            elif command == "clear":
                relay.clear()
                print("ok", flush=True)
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
