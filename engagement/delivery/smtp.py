"""Email over any SMTP relay: one reused connection, retries before the content leaves, in doubt after."""

from __future__ import annotations

import functools
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from email.utils import parseaddr
from types import TracebackType

from engagement import errors
from engagement.config import Settings
from engagement.delivery import mime, retry
from engagement.delivery.message import InDoubt, OutboundEmail, SendError


class SmtpEmail:
    """Sends through an SMTP relay (plain, STARTTLS or implicit TLS, with optional AUTH).

    Not thread-safe: the connection is reused across sends, so use one instance per worker.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        tls: bool = False,
        timeout_seconds: float = 10.0,
        attempts: int = 4,
        base_seconds: float = 0.5,
        max_seconds: float = 8.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if tls and starttls:
            raise errors.ConfigError(
                "email.smtp.tls (implicit TLS, usually port 465) and email.smtp.starttls "
                "(upgrade, usually port 587) exclude each other; set only one"
            )
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.tls = tls
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.local_hostname = local_hostname
        self.sleep = sleep
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmail:
        """The relay in `email.smtp`, retried as `email.retry` says."""
        smtp, backoff = settings.email.smtp, settings.email.retry
        return cls(
            smtp.host,
            smtp.port,
            username=smtp.username,
            password=smtp.password,
            starttls=smtp.starttls,
            tls=smtp.tls,
            timeout_seconds=smtp.timeout_seconds,
            attempts=backoff.attempts,
            base_seconds=backoff.base_seconds,
            max_seconds=backoff.max_seconds,
        )

    @property
    def where(self) -> str:
        """The relay, as error messages name it."""
        return f"smtp {self.host}:{self.port}"

    def send(self, message: OutboundEmail) -> str:
        """Transmit one message; return its Message-ID (without angle brackets)."""
        data = _data_section(mime.to_bytes(message))
        sender, recipient = parseaddr(message.sender)[1], parseaddr(message.to)[1]
        policy = retry.retrying(self.attempts, self.base_seconds, self.max_seconds, sleep=self.sleep)
        retry.call(functools.partial(self._transmit, sender, recipient, data), policy)
        return mime.message_id(message)

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except OSError:
                smtp.close()

    def __enter__(self) -> SmtpEmail:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _transmit(self, sender: str, recipient: str, data: bytes) -> None:
        """One attempt: the envelope (safe to repeat), then the content (never repeated)."""
        try:
            smtp = self._envelope(sender, recipient)
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _refusal(exc, self.where) from exc
        except OSError as exc:  # smtplib's other errors, sockets, TLS
            self._drop()
            raise _failure(exc, self.where) from exc
        try:
            smtp.send(data)
            code, reply = smtp.getreply()
        except OSError as exc:
            self._drop()
            raise InDoubt(
                f"{self.where}: connection lost after the message content was sent ({exc}); "
                "the relay may have accepted it, so it is not sent again"
            ) from exc
        if 200 <= code < 300:
            return
        self._reset()
        if 400 <= code < 600:
            raise _refusal(_Reply(code, reply, "end of DATA"), self.where)
        raise InDoubt(f"{self.where}: unexpected reply {code} {_text(reply)} to the message content")

    def _envelope(self, sender: str, recipient: str) -> smtplib.SMTP:
        """MAIL, RCPT and DATA on the open connection (or a new one); no content has left yet."""
        options = [] if (sender + recipient).isascii() else ["SMTPUTF8"]
        smtp = self._smtp
        if smtp is not None:
            try:
                _expect(smtp.mail(sender, options), "MAIL FROM")
            except (smtplib.SMTPServerDisconnected, _Reply) as exc:
                if isinstance(exc, _Reply) and exc.smtp_code != 421:
                    raise
                # the relay closed the idle connection (silently or with 421): reconnect now, no attempt spent
                self._drop()
                smtp = None
        if smtp is None:
            smtp = self._smtp = self._open()
            _expect(smtp.mail(sender, options), "MAIL FROM")
        _expect(smtp.rcpt(recipient), f"RCPT TO <{recipient}>")
        _expect(smtp.docmd("DATA"), "DATA", 354)
        return smtp

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, upgrade to TLS and log in as configured."""
        smtp = (
            smtplib.SMTP_SSL(
                self.host,
                self.port,
                self.local_hostname,
                timeout=self.timeout_seconds,
                context=self.ssl_context,
            )
            if self.tls
            else smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout_seconds)
        )
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo_or_helo_if_needed()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _reset(self) -> None:
        """After a refused transaction keep the connection if RSET works, else drop it."""
        if self._smtp is None:
            return
        try:
            code, _ = self._smtp.rset()
        except OSError:
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


class _Reply(smtplib.SMTPResponseException, errors.EngagementError):
    """An unexpected reply to one SMTP command."""

    def __init__(self, code: int, reply: bytes | str, command: str) -> None:
        super().__init__(code, reply)
        self.command = command


def _expect(answer: tuple[int, bytes], command: str, wanted: int = 250) -> None:
    code, reply = answer
    if code != wanted and not (wanted == 250 and code == 251):
        raise _Reply(code, reply, command)


def _refusal(exc: smtplib.SMTPResponseException, where: str) -> Exception:
    """5xx is a permanent refusal (SendError); anything else may pass later (Transient)."""
    command = exc.command if isinstance(exc, _Reply) else _COMMANDS.get(type(exc), "session")
    reason = f"{command} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    if exc.smtp_code >= 500:
        return SendError(f"{where}: {reason}", permanent=True)
    return retry.Transient(f"{where}: {reason}")


_COMMANDS: dict[type[smtplib.SMTPResponseException], str] = {
    smtplib.SMTPAuthenticationError: "authentication",
    smtplib.SMTPHeloError: "EHLO",
    smtplib.SMTPConnectError: "greeting",
}


def _failure(exc: OSError, where: str) -> Exception:
    """A failure without an SMTP reply: a refused or dropped connection is transient, a setup mismatch is not."""
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendError(
            f"{where}: {exc}; check email.smtp.starttls, email.smtp.tls and email.smtp.username",
            permanent=True,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(f"{where}: TLS certificate not trusted: {exc.verify_message}", permanent=True)
    if type(exc) is smtplib.SMTPException:  # e.g. no authentication method both sides support
        return SendError(f"{where}: {exc}", permanent=True)
    return retry.Transient(f"{where}: {type(exc).__name__}: {exc}" if str(exc) else f"{where}: {exc!r}")


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).replace("\n", " ")


def _data_section(message: bytes) -> bytes:
    """The message as sent after DATA: CRLF line ends, leading dots doubled, ended by a lone dot."""
    lines = re.sub(rb"\r\n|\n|\r(?!\n)", b"\r\n", message)
    stuffed = re.sub(rb"(?m)^\.", b"..", lines)
    return stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"
