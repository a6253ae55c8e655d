"""Search on the CS views: exact ids, case-insensitive prefixes of email, names and account name, the
LIKE wildcards taken literally, erased contacts left out, at most LIMIT hits; on SQLite and PostgreSQL."""

from __future__ import annotations

from engine_world import World

from engagement.views import search

BACKENDS = ("sqlite", "postgresql")


def _found(world: World, query: str) -> list[tuple[str, str]]:
    with world.db.begin() as conn:
        return [(h.kind, h.id) for h in search.search(conn, query)]


def test_search_finds_by_id_email_name_and_account_name(world: World) -> None:
    world.accounts({"id": "acme", "name": "Acme Corp"}, {"id": "globex", "name": "Globex"})
    world.contacts(
        {
            "id": "c1",
            "account_id": "acme",
            "email": "Ann.Lee@Acme.example",
            "first_name": "Ann",
            "last_name": "Lee",
        },
        {
            "id": "c2",
            "account_id": "acme",
            "email": "a_b@acme.example",
            "first_name": "Bob",
            "last_name": "Annis",
        },
        {
            "id": "c3",
            "account_id": "globex",
            "email": "axb@globex.example",
            "first_name": "Cy",
            "last_name": "Smith",
        },
        {"id": "gone", "account_id": "globex", "email": "gone@globex.example", "first_name": "Ann"},
    )
    world.erase("gone")
    assert _found(world, "c2") == [("contact", "c2")]
    assert _found(world, "acme") == [("account", "acme")]  # an exact account id, and the account name
    assert _found(world, "ANN.lee@") == [("contact", "c1")]
    assert _found(world, "ann") == [("contact", "c1"), ("contact", "c2")]  # first name Ann, last name Annis
    assert _found(world, "Ann Le") == [("contact", "c1")]
    assert _found(world, "glob") == [("account", "globex")]
    assert _found(world, "a_b") == [("contact", "c2")]  # `_` is a character, not a wildcard
    assert _found(world, "%") == []
    assert _found(world, "   ") == []


def test_search_returns_at_most_the_limit(world: World) -> None:
    world.accounts({"id": "acme", "name": "Acme"})
    world.contacts(*({"id": f"p{n:02d}", "account_id": "acme", "first_name": "Pat"} for n in range(30)))
    found = _found(world, "pat")
    assert len(found) == search.LIMIT and len(set(found)) == search.LIMIT
