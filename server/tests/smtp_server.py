"""A real SMTP server for server/tests/notify.rs: aiosmtpd (from PyPI) requiring STARTTLS
with the certificate the test made. Prints `PORT <n>` once listening, then one JSON line
per message received: sender, recipients, whether the session was encrypted, content.
Runs until its standard input closes."""

import json
import socket
import ssl
import sys

from aiosmtpd.controller import Controller


class Record:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "tls": session.ssl is not None,
                    "content": envelope.content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 OK"


def main():
    cert, key = sys.argv[1], sys.argv[2]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(
        Record(),
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
    )
    controller.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
