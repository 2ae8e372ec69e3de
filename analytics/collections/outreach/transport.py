"""How a message leaves: the email (headers, body, statement attachment) and the transport, one
SMTP connection per delivery batch or the outbox folder. The SMTP steps are driven one by one so
that a refusal (the server did not take it: safe to retry) is told apart from a lost final reply
after the content left (`DeliveryUncertain`: it may have been delivered)."""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from pathlib import Path
from typing import Any

from analytics.collections.letterhead import LOGO_CID, LOGO_TYPES, Letterhead
from analytics.collections.outreach.config import OutreachConfig, OutreachError

UNCERTAIN_ADVICE = "it may have reached the customer: mark it sent, or send it again (same Message-ID)"


class DeliveryUncertain(Exception):
    """The content went to the server and no final reply came back: it may have been delivered."""


def build_email(message: dict[str, Any], config: OutreachConfig) -> EmailMessage:
    """The email of a queued message: its stored Message-ID and idempotency key, body, attachment.

    A message with an HTML part (v19) goes as multipart/alternative: the text body, then the HTML
    body, with the letterhead's logo inline (Content-ID `ardesk-logo`) when the HTML shows it."""
    mail = EmailMessage()
    mail["From"] = config.from_address
    mail["To"] = message["to_address"]
    mail["Subject"] = message["subject"]
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = message["message_header_id"]
    mail["X-ARDesk-Key"] = message["idempotency_key"]
    mail.set_content(message["body"])
    if message.get("body_html"):
        mail.add_alternative(message["body_html"], subtype="html")
        logo = Letterhead.from_settings().logo_path()
        if logo is not None and f"cid:{LOGO_CID}" in message["body_html"]:
            mail.get_payload()[1].add_related(logo.read_bytes(), maintype="image",
                                              subtype=LOGO_TYPES[logo.suffix.lower()], cid=f"<{LOGO_CID}>")
    if message.get("attachment") is not None:
        name = message["attachment_name"] or "statement.pdf"
        if name.endswith(".pdf"):
            maintype, subtype = "application", "pdf"
        else:
            maintype, subtype = "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        mail.add_attachment(bytes(message["attachment"]), maintype=maintype, subtype=subtype, filename=name)
    return mail


def _dot_stuffed(content: bytes) -> bytes:
    """The DATA payload: lines starting with a dot doubled, CRLF-terminated, then the lone dot."""
    payload = re.sub(rb"(?m)^\.", b"..", content)
    return payload + (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n"


class Transport:
    """One SMTP connection per delivery batch (dropped after an error), or the outbox folder.

    `send` calls `handing_over()` right before the first byte of the content leaves: in SMTP after
    the server's 354 reply to DATA (nothing before that can deliver a message), in outbox mode
    before the file is written. An error before that point, and a 4xx/5xx reply after it, are
    definite failures (the server did not take it); losing the connection or the final reply after
    it raises `DeliveryUncertain`.
    """

    def __init__(self, config: OutreachConfig) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def send(self, mail: EmailMessage, message_id: int, handing_over: Callable[[], None]) -> None:
        if self.config.mode == "outbox":
            handing_over()
            folder = Path(self.config.outbox_dir)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{message_id:08d}.eml.tmp"
            tmp.write_bytes(bytes(mail))
            tmp.replace(folder / f"{message_id:08d}.eml")  # atomic: the file is there whole, or not at all
            return
        if self.config.mode != "smtp":
            raise OutreachError(f"Unknown outreach mode {self.config.mode!r}; use 'outbox' or 'smtp'.")
        try:
            self._send_smtp(mail, handing_over)
        except BaseException:
            self._drop()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self.smtp is None:
            smtp = smtplib.SMTP(self.config.smtp_host, self.config.smtp_port, timeout=self.config.smtp_timeout)
            if self.config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.config.smtp_user:
                smtp.login(self.config.smtp_user, self.config.smtp_password or "")
            self.smtp = smtp
        return self.smtp

    def _send_smtp(self, mail: EmailMessage, handing_over: Callable[[], None]) -> None:
        # smtplib's send_message does MAIL, RCPT, DATA and the content in one call, so a drop after
        # the content could not be told from a refusal before it; the steps are driven one by one.
        smtp = self._connection()
        smtp.ehlo_or_helo_if_needed()
        sender = getaddresses([str(mail["From"])])[0][1]
        recipient = getaddresses([str(mail["To"])])[0][1]
        policy, options = email_policy.SMTP, []
        if not (sender + recipient).isascii():
            if not smtp.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "the address needs internationalised email (SMTPUTF8), which the server does not offer")
            policy, options = email_policy.SMTPUTF8, ["SMTPUTF8", "BODY=8BITMIME"]
        content = mail.as_bytes(policy=policy)
        if smtp.has_extn("size"):
            options.append(f"size={len(content)}")
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        handing_over()
        try:
            smtp.send(_dot_stuffed(content))
            code, reply = smtp.getreply()
        except OSError as exc:  # smtplib's errors are OSErrors too: a dropped connection, a timeout
            raise DeliveryUncertain(
                f"the server received the message but never confirmed it ({type(exc).__name__}: {exc}); "
                f"{UNCERTAIN_ADVICE}") from exc
        if code != 250:  # an answer after the content is a refusal: the server did not take it
            raise smtplib.SMTPDataError(code, reply)

    def _drop(self) -> None:
        # After an error the session is in an unknown state; mid-DATA even QUIT would be read as
        # content, so the socket is just closed (the server discards an unterminated message).
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except Exception:  # noqa: S110 - the connection is being dropped anyway
                pass
            self.smtp = None
