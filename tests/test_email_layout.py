"""A templates folder of one's own: the shipped layout wraps every email when the folder has none, a layout
in the folder overrides it, `validate` renders through the layout that is used, and a tick says why
messages failed or wait."""

from __future__ import annotations

import email
import shutil
from email.message import Message
from pathlib import Path

from engine_world import NOW, TEMPLATES, World, one_email

from engagement import config
from engagement.delivery.templates import DEFAULT_LAYOUTS, HTML_LAYOUT, TEXT_LAYOUT

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

POSTAL = "500 Example Street, Suite 100, Springfield, OR 97477, USA"
WELCOME = one_email()


def own_templates(world: World, *, layout: dict[str, str] | None = None) -> Path:
    """A templates folder with the step templates only (and `layout` files, if given), made the config's."""
    folder = world.root / "my-templates"
    shutil.copytree(TEMPLATES / "onboarding", folder / "onboarding")
    for name, text in (layout or {}).items():
        (folder / name).write_text(text)
    text = world.config_path.read_text().replace(f'dir = "{TEMPLATES}"', f'dir = "{folder}"')
    world.config_path.write_text(text)
    world.settings = config.load(world.config_path)
    return folder


def outbox(world: World) -> list[Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted((world.root / "outbox").glob("*.eml"))]


def parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode("utf-8")
    return found


def test_a_templates_folder_without_a_layout_sends_every_email_with_the_shipped_footer(world: World) -> None:
    folder = own_templates(world)
    assert not (folder / HTML_LAYOUT).exists() and not (folder / TEXT_LAYOUT).exists()
    world.journey(WELCOME)
    contacts = world.people(3)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))

    checked = world.cli("validate")
    ticked = world.cli("tick", "--now", NOW.isoformat())

    assert checked.exit_code == 0, checked.output
    assert ticked.exit_code == 0, ticked.output
    assert "sent 3," in ticked.output and "failed 0" in ticked.output
    messages = outbox(world)
    assert len(messages) == 3
    for message in messages:
        unsubscribe = message["List-Unsubscribe"].strip("<>")
        assert unsubscribe.startswith("http://127.0.0.1:8000/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = parts(message)
        assert set(body) == {"text/plain", "text/html"}
        for part in body.values():
            assert POSTAL in part and "Chartwell Analytics, Inc." in part
        assert f"Unsubscribe: {unsubscribe}" in body["text/plain"]
        assert f'href="{unsubscribe.replace("&", "&amp;")}"' in body["text/html"]


def test_the_shipped_layout_is_package_data_beside_the_code() -> None:
    assert (DEFAULT_LAYOUTS / HTML_LAYOUT).is_file() and (DEFAULT_LAYOUTS / TEXT_LAYOUT).is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"delivery/email_layout/*.j2"' in pyproject  # so a non-editable install has it too


def test_a_layout_in_the_templates_folder_overrides_the_shipped_one(world: World) -> None:
    own_templates(
        world,
        layout={
            HTML_LAYOUT: "<html><body>{{ content }}<p>OURS {{ company.postal_address }} "
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>',
            TEXT_LAYOUT: "{{ content }}\nOURS {{ company.postal_address }} {{ unsubscribe_url }}\n",
        },
    )
    world.journey(WELCOME)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    assert world.cli("tick", "--now", NOW.isoformat()).exit_code == 0

    [message] = outbox(world)
    body = parts(message)
    assert f"OURS {POSTAL}" in body["text/plain"] and f"OURS {POSTAL}" in body["text/html"]


def test_validate_fails_a_layout_in_the_folder_that_does_not_render_and_names_it(world: World) -> None:
    own_templates(world, layout={TEXT_LAYOUT: "{{ content }}\n{{ company.phone }}\n"})
    world.journey(WELCOME)

    checked = world.cli("validate")

    assert checked.exit_code == 1
    assert "steps[0].email.template: template 'onboarding/welcome': _layout.txt.j2: undefined variable" in (
        checked.output
    )
    assert "'phone'" in checked.output


def test_validate_fails_a_layout_with_a_syntax_error_with_its_file_and_line(world: World) -> None:
    own_templates(world, layout={HTML_LAYOUT: "<html>\n{{ content }\n</html>\n"})
    world.journey(WELCOME)

    checked = world.cli("validate")

    assert checked.exit_code == 1
    assert "template 'onboarding/welcome': _layout.html.j2:2: syntax error" in checked.output


def test_a_tick_that_fails_or_holds_messages_prints_each_reason_with_its_count(world: World) -> None:
    folder = own_templates(world)
    # renders for validate's sample contact (no traits), fails for a contact whose seats are 0
    (folder / "onboarding" / "seats.html.j2").write_text("<p>{{ 100 // contact.traits.get('seats', 1) }}</p>")
    (folder / "onboarding" / "seats.txt.j2").write_text("{{ 100 // contact.traits.get('seats', 1) }}")
    world.journey("""
        id: seats
        name: Seats
        status: active
        trigger: {event: signed_up}
        steps:
          - id: per-seat
            email: {template: onboarding/seats, subject: Per seat}
    """)
    world.journey("""
        id: later
        name: Later
        status: active
        trigger: {event: signed_up}
        send_window: {days: sat-sun, hours: "09:00-17:00", timezone: UTC}
        steps:
          - id: weekend
            email: {template: onboarding/welcome, subject: Weekend}
    """)
    world.people(2, traits={"seats": 0})
    world.people(1, prefix="ok")
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001", "ok000"))
    )

    assert world.cli("validate").exit_code == 0
    ticked = world.cli("tick", "--now", NOW.isoformat())

    assert ticked.exit_code == 0, ticked.output
    lines = ticked.output.splitlines()
    assert (
        "failed 2: template 'onboarding/seats': onboarding/seats.html.j2: ZeroDivisionError: integer division "
        "or modulo by zero"
    ) in lines
    assert "held 3: outside the send window" in lines


def test_validate_reports_a_subject_that_raises_any_error_instead_of_crashing(world: World) -> None:
    world.journey(WELCOME.replace('"Welcome aboard, {{ contact.first_name }}"', '"{{ 1 // 0 }} left"'))

    checked = world.cli("validate")

    assert checked.exit_code == 1 and isinstance(checked.exception, SystemExit), checked.exception
    assert "steps[0].email.subject: ZeroDivisionError: integer division or modulo by zero" in checked.output
