"""SMTP delivery against a real aiosmtpd relay on 127.0.0.1: what arrives, what is retried, what is in doubt."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from messages import LINK, SENT_AT, outbound

from engagement import config, errors
from engagement.delivery.message import InDoubt, OutboundEmail, SendError
from engagement.delivery.smtp import SmtpEmail
from engagement.delivery.templates import Renderer, sample_context
from engagement.engine import email_provider

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"


@dataclass
class Received:
    """One message the relay accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any
    tls: bool
    login: bytes | None


@dataclass
class Relay:
    """Stores every accepted message; `refuse` maps a command to replies given before accepting."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, list[str]] = field(default_factory=dict)
    after_content: str | None = None  # "drop" or "stall": lose the connection once the content is in
    connections: int = 0

    def _refusal(self, server: SMTP, command: str) -> str | None:
        replies = self.refuse.get(command)
        if not replies:
            return None
        reply = replies.pop(0)
        if reply == "drop":
            assert server.transport is not None
            server.transport.close()
        return reply

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refused = self._refusal(server, "MAIL")
        if refused:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refused = self._refusal(server, "RCPT")
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = self._refusal(server, "DATA")
        if refused:
            return refused
        assert envelope.mail_from is not None and isinstance(envelope.original_content, bytes)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                session.peer,
                session.ssl is not None,
                login,
            )
        )
        if self.after_content == "drop":
            assert server.transport is not None
            server.transport.close()
        elif self.after_content == "stall":
            await asyncio.sleep(2)
        return "250 2.0.0 queued"


class Sleeps(list[float]):
    """An injected sleep that records each backoff instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start aiosmtpd relays on 127.0.0.1; each is stopped after the test."""
    started: list[Controller] = []

    def start(relay: Relay, **smtp: Any) -> int:
        port = free_port()
        controller = Controller(relay, hostname="127.0.0.1", port=port, **smtp)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1, with the contexts each side needs."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Certificate(server, ssl.create_default_context(cafile=str(cert_file)))


def rendered_welcome() -> OutboundEmail:
    context = sample_context("contact", config.Company().model_dump())
    email = Renderer(TEMPLATES).email(
        "onboarding/welcome", "Welcome aboard, {{ contact.first_name }}", context
    )
    return outbound(subject=email.subject, html=email.html, text=email.text)


def smtp(port: int, sleeps: Sleeps | None = None, **options: Any) -> SmtpEmail:
    return SmtpEmail(
        "127.0.0.1",
        port,
        local_hostname="engine.test",
        sleep=Sleeps() if sleeps is None else sleeps,
        **options,
    )


def parsed(received: Received) -> EmailMessage:
    message = message_from_bytes(received.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_rendered_email_arrives_as_multipart_alternative_with_all_headers_and_inlined_css(
    serve: Any,
) -> None:
    relay = Relay()
    message = rendered_welcome()

    with smtp(serve(relay)) as provider:
        provider_id = provider.send(message)

    assert provider_id == "0b7e4c1a-3f0e-5d6c-9a8b-7c6d5e4f3a2b@chartwell.example"
    [got] = relay.received
    assert (got.mail_from, got.rcpt_tos) == ("success@chartwell.example", ["ada@example.com"])
    mail = parsed(got)
    assert mail.defects == []
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert str(text.get_content()).replace("\r\n", "\n") == message.text
    assert str(mail["List-Unsubscribe"]) == f"<{LINK}>"
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert mail["From"].addresses[0].display_name == "Chartwell"
    assert mail["From"].addresses[0].addr_spec == "success@chartwell.example"
    assert str(mail["To"]) == "Ada Lovelace <ada@example.com>"
    assert str(mail["Reply-To"]) == "Chartwell Customer Success <help@chartwell.example>"
    assert mail["Date"].datetime == SENT_AT
    assert str(mail["Message-ID"]) == f"<{provider_id}>"
    body = str(html.get_content())
    assert 'class="button"' in body
    button = body[body.index('class="button"') : body.index(">", body.index('class="button"'))]
    assert "background-color: #1d4ed8" in button and "color: #ffffff" in button


def test_a_message_with_a_line_starting_with_a_dot_arrives_intact(serve: Any) -> None:
    relay = Relay()
    message = outbound(text="Hi Ada,\n.\n.. and a dot line\n", html="<p>x</p>\n.\n")

    with smtp(serve(relay)) as provider:
        provider.send(message)

    text, html = parsed(relay.received[0]).iter_parts()
    assert str(text.get_content()).replace("\r\n", "\n") == message.text
    assert str(html.get_content()).replace("\r\n", "\n") == message.html


def test_consecutive_sends_reuse_one_connection(serve: Any) -> None:
    relay = Relay()

    with smtp(serve(relay)) as provider:
        provider.send(outbound(delivery_id="one"))
        provider.send(outbound(delivery_id="two"))

    assert [parsed(r)["Message-ID"] for r in relay.received] == [
        "<one@chartwell.example>",
        "<two@chartwell.example>",
    ]
    assert relay.received[0].peer == relay.received[1].peer


def test_a_connection_the_relay_closed_while_idle_is_reopened_without_spending_a_retry(serve: Any) -> None:
    relay = Relay()
    sleeps = Sleeps()
    port = serve(relay, timeout=0.2)

    with smtp(port, sleeps) as provider:
        provider.send(outbound(delivery_id="one"))
        time.sleep(0.5)  # the relay's idle timeout closes the connection
        provider.send(outbound(delivery_id="two"))

    assert len(relay.received) == 2 and relay.received[0].peer != relay.received[1].peer
    assert sleeps == []


def test_a_connection_the_relay_ends_with_421_before_the_next_message_is_reopened_at_once(
    serve: Any,
) -> None:
    relay = Relay()
    sleeps = Sleeps()

    with smtp(serve(relay), sleeps) as provider:
        provider.send(outbound(delivery_id="one"))
        relay.refuse["MAIL"] = ["421 4.4.2 Error: timeout exceeded"]
        provider.send(outbound(delivery_id="two"))

    assert len(relay.received) == 2 and relay.received[0].peer != relay.received[1].peer
    assert sleeps == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_logs_in_with_the_configured_user(serve: Any) -> None:
    relay = Relay()
    port = serve(relay, authenticator=authenticate, auth_required=True, auth_require_tls=False)

    with smtp(port, username="mailer", password="s3cret") as provider:
        provider.send(outbound())

    assert [r.login for r in relay.received] == [b"mailer"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_wrong_password_is_a_permanent_failure_and_is_not_retried(serve: Any) -> None:
    relay = Relay()
    sleeps = Sleeps()
    port = serve(relay, authenticator=authenticate, auth_required=True, auth_require_tls=False)

    with (
        smtp(port, sleeps, username="mailer", password="wrong") as provider,
        pytest.raises(SendError) as caught,
    ):
        provider.send(outbound())

    assert caught.value.permanent
    assert "authentication refused: 535" in caught.value.reason
    assert relay.received == [] and sleeps == []


def test_starttls_then_auth_delivers_over_an_encrypted_connection(
    serve: Any, certificate: Certificate
) -> None:
    relay = Relay()
    port = serve(
        relay,
        tls_context=certificate.server,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )

    with smtp(
        port, starttls=True, ssl_context=certificate.client, username="mailer", password="s3cret"
    ) as provider:
        provider.send(outbound())

    assert [(r.tls, r.login) for r in relay.received] == [(True, b"mailer")]


def test_implicit_tls_delivers(serve: Any, certificate: Certificate) -> None:
    relay = Relay()
    port = serve(relay, ssl_context=certificate.server)

    with smtp(port, tls=True, ssl_context=certificate.client) as provider:
        provider.send(outbound())

    assert len(relay.received) == 1


def test_a_relay_certificate_nobody_trusts_is_a_permanent_failure(
    serve: Any, certificate: Certificate
) -> None:
    relay = Relay()
    sleeps = Sleeps()
    port = serve(relay, tls_context=certificate.server)

    with smtp(port, sleeps, starttls=True) as provider, pytest.raises(SendError) as caught:
        provider.send(outbound())

    assert caught.value.permanent and "certificate not trusted" in caught.value.reason
    assert relay.received == [] and sleeps == []


def test_tls_and_starttls_together_are_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="exclude each other"):
        SmtpEmail("127.0.0.1", 25, tls=True, starttls=True)


def test_a_550_to_rcpt_is_a_permanent_failure_carrying_the_relays_text(serve: Any) -> None:
    relay = Relay(refuse={"RCPT": ["550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown"]})
    sleeps = Sleeps()

    with smtp(serve(relay), sleeps) as provider:
        with pytest.raises(SendError) as caught:
            provider.send(outbound())
        provider.send(outbound(delivery_id="next"))  # the connection is still usable after RSET

    assert caught.value.permanent
    assert "550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown" in caught.value.reason
    assert sleeps == []
    assert [parsed(r)["Message-ID"] for r in relay.received] == ["<next@chartwell.example>"]


def test_a_554_after_the_content_is_a_permanent_failure(serve: Any) -> None:
    relay = Relay(refuse={"DATA": ["554 5.7.1 Message rejected as spam"]})

    with smtp(serve(relay)) as provider, pytest.raises(SendError) as caught:
        provider.send(outbound())

    assert caught.value.permanent and "end of DATA refused: 554 5.7.1 Message rejected as spam" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("RCPT", "451 4.3.0 Temporary lookup failure"),
        ("RCPT", "450 4.2.1 Mailbox busy"),
        ("DATA", "451 4.3.0 Try again later"),
        ("RCPT", "drop"),  # the connection is lost before any content was sent
    ],
)
def test_a_temporary_failure_is_retried_and_the_message_delivered_once(
    serve: Any, command: str, reply: str
) -> None:
    relay = Relay(refuse={command: [reply]})
    sleeps = Sleeps()

    with smtp(serve(relay), sleeps, base_seconds=0.5, max_seconds=8.0) as provider:
        provider_id = provider.send(outbound())

    assert [parsed(r)["Message-ID"] for r in relay.received] == [f"<{provider_id}>"]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 8.0


def test_a_refused_connection_is_retried_with_backoff_then_fails_not_permanently(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    file = tmp_path / "config.toml"
    file.write_text(
        "[email.smtp]\n"
        f'host = "127.0.0.1"\nport = {port}\ntimeout_seconds = 2\n'
        "[email.retry]\nattempts = 4\nbase_seconds = 0.5\nmax_seconds = 1.0\n"
    )
    provider = SmtpEmail.from_settings(config.load(file))
    sleeps = Sleeps()
    provider.sleep = sleeps

    with pytest.raises(SendError) as caught:
        provider.send(outbound())

    assert not caught.value.permanent and not isinstance(caught.value, InDoubt)
    assert "ConnectionRefusedError" in caught.value.reason and "after 4 attempts" in caught.value.reason
    assert len(sleeps) == 3  # four attempts
    assert all(0 <= s <= 1.0 for s in sleeps)


@pytest.mark.parametrize("loss", ["drop", "stall"])
def test_a_connection_lost_after_the_content_was_received_is_in_doubt_and_not_sent_again(
    serve: Any, loss: str
) -> None:
    relay = Relay(after_content=loss)
    sleeps = Sleeps()

    with smtp(serve(relay), sleeps, timeout_seconds=0.5) as provider, pytest.raises(InDoubt) as caught:
        provider.send(outbound())

    assert "may have accepted it" in caught.value.reason
    assert len(relay.received) == 1 and sleeps == []


@pytest.mark.parametrize("provider", ["smtp", "sendgrid"])
def test_a_real_provider_refuses_the_shipped_example_sender_and_names_each_key(
    tmp_path: Path, provider: str
) -> None:
    file = tmp_path / "config.toml"
    file.write_text(f'[email]\nprovider = "{provider}"\n[company]\nname = "Acme Analytics, Inc."\n')

    with pytest.raises(errors.ConfigError) as caught:
        email_provider(config.load(file))

    assert f"email.provider is {provider}, but email.from, company.postal_address still are" in str(
        caught.value
    )
    file.write_text(
        f'[email]\nprovider = "{provider}"\nfrom = "Acme <cs@acme.example.com>"\n'
        '[company]\nname = "Acme Analytics, Inc."\npostal_address = "1 Main St, Springfield"\n'
        '[email.sendgrid]\napi_key = "SG.test"\n'
    )
    assert email_provider(config.load(file)) is not None
    file.write_text('[email]\nprovider = "outbox"\n')  # the demo's and a laptop's: the example is fine
    assert email_provider(config.load(file)) is not None
