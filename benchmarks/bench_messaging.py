"""Messaging figures: the cost of one SMTP connection per message, and the outbox under threads.

The SMTP server is a minimal one written here with the standard library, on
127.0.0.1, so the figure is the client's own cost (connect, EHLO, MAIL, RCPT,
DATA, QUIT) without a network or a real mail server's work.
"""

from __future__ import annotations

import socketserver
import threading
import time

from _timing import in_threads, mode_line, scaled

from securepractice.messaging import EmailMessage, Outbox, SmsMessage, SmtpEmailSender

SMTP_MESSAGES = scaled(300, 50)
OUTBOX_MESSAGES = scaled(100_000, 10_000)
THREADS = 8


class _MiniSmtp(socketserver.StreamRequestHandler):
    """Accepts every message and keeps nothing; just enough SMTP for smtplib."""

    def handle(self) -> None:
        self.wfile.write(b"220 bench ESMTP\r\n")
        in_data = False
        for raw in self.rfile:
            if in_data:
                if raw == b".\r\n":
                    in_data = False
                    self.wfile.write(b"250 OK\r\n")
                continue
            verb = raw[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-bench\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


def bench_smtp() -> float:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MiniSmtp)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    sender = SmtpEmailSender(
        host="127.0.0.1",
        port=server.server_address[1],
        security="none",
        from_address="noreply@portal.example",
        local_hostname="bench.local",
    )
    message = EmailMessage(
        to="pat@clinic.example",
        subject="Reset your password",
        body="Open https://portal.example/reset?token=abcdefghijklmnop\n" * 10,
    )
    try:
        start = time.perf_counter()
        for _ in range(SMTP_MESSAGES):
            sender.send_email(message)
        elapsed = time.perf_counter() - start
    finally:
        server.shutdown()
        server.server_close()
    return elapsed / SMTP_MESSAGES


def bench_outbox(threads: int) -> float:
    outbox = Outbox()
    message = SmsMessage(to="+12025550123", text="Your code is 482913")
    per_thread = OUTBOX_MESSAGES // threads

    def work() -> None:
        for _ in range(per_thread):
            outbox.send_sms(message)

    elapsed = in_threads(threads, work)
    assert len(outbox.sms) == per_thread * threads
    return elapsed / (per_thread * threads)


def bench_last_code() -> float:
    outbox = Outbox()
    for index in range(1000):
        outbox.send_sms(SmsMessage(to=f"+1202555{index:04d}", text=f"Your code is {index:06d}"))
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        outbox.last_code("+12025550000")
    return (time.perf_counter() - start) / rounds


def main() -> None:
    print(f"messaging; {mode_line()}")
    smtp = bench_smtp()
    print(f"smtp plain loopback, one connection per message: {smtp * 1e3:.3f} ms/message")
    single = bench_outbox(1)
    threaded = bench_outbox(THREADS)
    print(f"outbox send_sms, 1 thread: {single * 1e6:.3f} us/message")
    print(f"outbox send_sms, {THREADS} threads: {threaded * 1e6:.3f} us/message")
    print(f"ratio {THREADS} threads / 1 thread: {threaded / single:.2f}")
    print(f"ratio smtp / outbox: {smtp / single:.0f}")
    last = bench_last_code()
    print(f"outbox last_code, oldest of 1000 kept messages: {last * 1e6:.1f} us/lookup")


if __name__ == "__main__":
    main()
