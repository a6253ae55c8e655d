"""The outbox writes RFC 5322 files any mail library reads back exactly as the engine meant them."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import messages
import pytest
from engine_world import NOW, World, one_email
from hypothesis import example, given
from hypothesis import strategies as st
from messages import LINK, SENT_AT

from engagement.clock import ManualClock
from engagement.delivery import mime
from engagement.delivery.message import OutboundEmail
from engagement.delivery.outbox import OutboxEmail
from engagement.engine import Engine, load_catalog
from engagement.store import schema


def outbound(**changes: Any) -> OutboundEmail:
    long_html = "<p>Hi Ada,</p>\n<p>" + "A long line of HTML. " * 80 + "</p>"
    return messages.outbound(**{"html": long_html, "text": "Hi Ada,\n\nWelcome.\n", **changes})


def written(folder: Path, message: OutboundEmail) -> EmailMessage:
    OutboxEmail(folder).send(message)
    parsed = message_from_bytes(raw(folder, message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def raw(folder: Path, message: OutboundEmail) -> bytes:
    return (folder / f"{message.delivery_id}.eml").read_bytes()


def content(part: EmailMessage) -> str:
    """A part's decoded text with the file's CRLF line ends read as newlines."""
    return str(part.get_content()).replace("\r\n", "\n")


def test_an_outbox_email_is_multipart_alternative_with_the_text_part_first(tmp_path: Path) -> None:
    message = outbound()

    parsed = written(tmp_path, message)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[0]) == message.text
    assert content(parts[1]) == message.html
    assert parsed.defects == [] and all(p.defects == [] for p in parts)


def test_an_outbox_email_carries_sender_recipient_subject_date_ids_and_unsubscribe_headers(
    tmp_path: Path,
) -> None:
    parsed = written(tmp_path, outbound())

    assert parsed["From"].addresses[0].display_name == "Chartwell"
    assert parsed["From"].addresses[0].addr_spec == "success@chartwell.example"
    assert str(parsed["To"]) == "Ada Lovelace <ada@example.com>"
    assert str(parsed["Reply-To"]) == "Chartwell Customer Success <help@chartwell.example>"
    assert str(parsed["Subject"]) == "Welcome aboard, Ada"
    assert parsed["Date"].datetime == SENT_AT
    assert str(parsed["Message-ID"]) == "<0b7e4c1a-3f0e-5d6c-9a8b-7c6d5e4f3a2b@chartwell.example>"
    assert str(parsed["List-Unsubscribe"]) == f"<{LINK}>"
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_link_is_written_literally_not_as_an_encoded_word(tmp_path: Path) -> None:
    link = "https://engagement.customer-success.example.com/unsubscribe/" + "x" * 120
    message = outbound(
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    )

    written(tmp_path, message)

    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in raw(tmp_path, message)


def test_non_ascii_subjects_names_and_bodies_round_trip(tmp_path: Path) -> None:
    message = outbound(
        subject="Zoë, your report is ready — 🎉 «Übersicht» " + "ünïcödé " * 12,
        to_name="Zoë Ångström-Müller",
        text="Grüße, Zoë ✓\n",
        html="<p>Grüße, Zoë ✓</p>",
    )

    parsed = written(tmp_path, message)

    assert raw(tmp_path, message).isascii()  # 7-bit on the wire: encoded words and quoted-printable
    assert str(parsed["Subject"]) == message.subject
    assert parsed["To"].addresses[0].display_name == "Zoë Ångström-Müller"
    assert parsed["To"].addresses[0].addr_spec == "ada@example.com"
    text, html = (content(p) for p in parsed.iter_parts())
    assert (text, html) == ("Grüße, Zoë ✓\n", "<p>Grüße, Zoë ✓</p>")


def test_a_display_name_with_special_characters_stays_one_address(tmp_path: Path) -> None:
    parsed = written(tmp_path, outbound(to_name='Lovelace, Ada "Countess"'))

    [address] = parsed["To"].addresses
    assert (address.display_name, address.addr_spec) == ('Lovelace, Ada "Countess"', "ada@example.com")


def test_a_line_break_in_a_recipient_name_cannot_add_a_header(tmp_path: Path) -> None:
    message = outbound(to_name="Ada\r\nBcc: evil@example.com")

    parsed = written(tmp_path, message)

    assert parsed["Bcc"] is None
    [address] = parsed["To"].addresses
    assert (address.display_name, address.addr_spec) == ("Ada Bcc: evil@example.com", "ada@example.com")
    assert b"\nBcc:" not in raw(tmp_path, message)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {
            "subject": "Zoë, " + "ünïcödé " * 12,
            "to_name": "Zoë Ångström",
            "text": "From here\n.\n",
            "html": "é" * 300,
        },
        {"to_name": 'Lovelace, Ada "Countess"', "reply_to": None, "subject": "a  b\tc"},
        {"headers": {"List-Unsubscribe": "<https://e.example/" + "x" * 1100 + ">"}},
        {"subject": "x" * 1000},
    ],
)
def test_a_message_is_written_byte_for_byte_as_the_wire_policy_writes_it(changes: dict[str, Any]) -> None:
    message = outbound(**changes)
    boundary = re.compile(rb"={15}\d+==")

    written = mime.to_bytes(message)

    assert boundary.sub(b"B", written) == boundary.sub(
        b"B", mime.build_mime(message).as_bytes(policy=mime.WIRE)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"text": "line one\r\nline two\rline three\n\n\n", "html": "<p>no newline at the end</p>"},
        {"text": "trailing spaces   \nand a tab\t\nFrom the start\n.\n..\n", "html": "=3D =\n" * 40},
        {"text": "Grüße, Zoë ✓ " * 30 + "\n", "html": "<p>" + "é" * 500 + "</p>\n"},
        {"text": "--" + "=" * 15 + "1234==\n", "html": "x" * 77 + "\n" + "y" * 76 + "=" + "\n"},
        {"subject": "Tabs\tand  spaces", "to_name": "", "sent_at": None, "headers": {}},
        {"subject": "Zoë", "to_name": "Zoë Ångström"},
    ],
)
def test_the_usual_message_is_written_directly_with_the_bytes_of_emails_generator(
    changes: dict[str, Any],
) -> None:
    message = outbound(**changes)
    boundary = re.compile(rb"={15}\d+==")

    direct = mime._written(message)

    assert direct is not None
    assert boundary.sub(b"B", direct) == boundary.sub(
        b"B", mime.build_mime(message).as_bytes(policy=mime.PLAIN)
    )
    assert boundary.sub(b"B", direct) == boundary.sub(
        b"B", mime.build_mime(message).as_bytes(policy=mime.WIRE)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"text": ""},
        {"subject": "Zoë, " + "ünïcödé " * 12},
        {"headers": {"List-Unsubscribe": "<https://e.example/" + "x" * 1100 + ">"}},
    ],
)
def test_a_message_with_an_empty_part_or_a_header_to_encode_goes_through_emails_generator(
    changes: dict[str, Any],
) -> None:
    message = outbound(**changes)
    boundary = re.compile(rb"={15}\d+==")

    assert mime._written(message) is None
    assert boundary.sub(b"B", mime.to_bytes(message)) == boundary.sub(
        b"B", mime.build_mime(message).as_bytes(policy=mime.WIRE)
    )


LINES = st.text(
    st.sampled_from(list(" \t=\r\n.xé✓\x0b\x85-")) | st.characters(exclude_categories=["Cs"]), max_size=400
)


@given(LINES)
@example("x" * 74 + " ")
@example("x" * 75 + " ")
@example("x" * 76 + "\t\n" + "y" * 73 + "==")
@example("é" * 40 + "\r\n\r")
def test_quoted_printable_bodies_are_emails_own_character_for_character(text: str) -> None:
    expected = mime._utf8().body_encode(text)

    assert mime.quoted_printable(text) == expected


def test_a_lone_surrogate_in_a_body_fails_as_it_does_in_emails_own_encoder() -> None:
    with pytest.raises(UnicodeEncodeError):
        mime._utf8().body_encode("a\ud800")
    with pytest.raises(UnicodeEncodeError):
        mime.quoted_printable("a\ud800")


def test_the_engine_stamps_each_outbox_email_with_the_tick_time_and_its_delivery_id(world: World) -> None:
    world.journey(one_email("hello", "welcome"))
    world.people(1, first_name="Zoë", last_name="Ångström")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    later = NOW + timedelta(minutes=7, seconds=3)
    engine = Engine(
        world.settings, clock=ManualClock(later), database=world.db, catalog=load_catalog(world.settings)
    )

    engine.tick(later)

    [delivery] = world.rows(schema.deliveries)
    [file] = (world.root / "outbox").glob("*.eml")
    parsed = message_from_bytes(file.read_bytes(), policy=policy.default)
    assert file.name == f"{delivery['id']}.eml"
    assert parsed["Date"].datetime == later
    assert str(parsed["Subject"]) == "Welcome aboard, Zoë"
    assert parseaddr(str(parsed["To"])) == ("Zoë Ångström", "c000@example.com")
    assert str(parsed["X-Engagement-Delivery"]) == delivery["id"]
    assert str(parsed["Message-ID"]).strip("<>") == delivery["provider_message_id"]
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(parsed["List-Unsubscribe"]).startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert b"\r\nList-Unsubscribe: <http://127.0.0.1:8000/unsubscribe/" in file.read_bytes()
