"""A real SMTP server on loopback for signoff's email tests (aiosmtpd).

    python smtp_sink.py PORT DIR

Each message accepted is written to DIR/NNNN-<recipient>.eml, and read back by Python's email
package into DIR/NNNN-<recipient>.json (its headers, and its text/plain and text/html parts
decoded), so a test checks what a mail client would show. What it answers is steered by
files in DIR, so a test can change it while it runs:
  DIR/busy            every RCPT is answered 451 (try again later)
  DIR/refuse-ADDRESS  RCPT for ADDRESS is answered 550 (no such mailbox)
Prints "ready" on stdout once it listens.
"""

import email
import email.policy
import itertools
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if os.path.exists(os.path.join(self.folder, "busy")):
            return "451 4.3.2 busy, try again later"
        if os.path.exists(os.path.join(self.folder, "refuse-" + address)):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        read = {
            "headers": {k: str(v) for k, v in parsed.items()},
            "plain": parsed.get_body(("plain",)).get_content() if parsed.get_body(("plain",)) else None,
            "html": parsed.get_body(("html",)).get_content() if parsed.get_body(("html",)) else None,
        }
        for to in envelope.rcpt_tos:
            stem = "%04d-%s" % (next(self.count), to)
            self.write(stem + ".json", json.dumps(read).encode())
            # The .eml last: a test that sees it finds the .json too.
            self.write(stem + ".eml", envelope.original_content)
        return "250 Message accepted for delivery"

    def write(self, name, content):
        temporary = os.path.join(self.folder, "." + name)
        with open(temporary, "wb") as f:
            f.write(content)
        os.rename(temporary, os.path.join(self.folder, name))


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
