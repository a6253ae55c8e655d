"""The README and docs/ stay true: every command, option and config key they name exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from engagement import cli, config, config_reference
from engagement.running import secret_policy

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
COMMAND = re.compile(r"(?:^|[\s(])(?:engagement|\./dev)[ \t]+(\S.*)")
KEY = re.compile(r"^\[?([a-z][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\]?(?:\s*=.*)?$")
ENV = re.compile(r"\bENGAGEMENT_([A-Z0-9_]+__[A-Z0-9_]+)")
FILE_SUFFIXES = {
    "py",
    "md",
    "yaml",
    "yml",
    "toml",
    "js",
    "j2",
    "csv",
    "json",
    "html",
    "txt",
    "eml",
    "db",
    "sh",
}
DEV_ONLY = {"test"}  # `./dev test` is the dev script's own, not an `engagement` command
NOT_CONFIG = {"company.id"}  # a Segment trait (api.md), not the `[company]` section


def snippets(text: str) -> Iterator[str]:
    """Each line of every fenced block (comments cut), then every inline code span."""
    for block in FENCE.findall(text):
        for line in block.splitlines():
            yield re.split(r"\s#\s", line, maxsplit=1)[0]
    for span in SPAN.findall(FENCE.sub("", text)):
        yield span.replace("\n", " ")


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in param.opts + param.secondary_opts} | {"--help"}


def command_problems(text: str) -> list[str]:
    """Every `engagement COMMAND [SUBCOMMAND] [--option]` in `text` that the CLI does not have."""
    root = typer.main.get_command(cli.app)  # a click group (typer vendors its own click)
    problems = []
    for snippet in snippets(text):
        found = COMMAND.search(snippet)
        if found:
            problems += _check_command(root, found.group(0).split()[0], found.group(1).split())
    return problems


def _check_command(root: Any, program: str, tokens: list[str]) -> list[str]:
    said = " ".join([program, *tokens])
    while tokens and tokens[0].startswith("-"):  # global options: --config FILE, --help
        option = tokens.pop(0)
        if option not in _options(root):
            return [f"{said!r}: no global option {option}"]
        if option == "--config" and tokens:
            tokens.pop(0)
    if not tokens or tokens[0].isupper() or (program == "./dev" and tokens[0] in DEV_ONLY):
        return []  # a placeholder such as COMMAND
    commands: list[Any] = []
    for name in tokens[0].split("|"):
        command = root.commands.get(name)
        if command is None:
            return [f"{said!r}: no command {name!r} (commands: {', '.join(sorted(root.commands))})"]
        commands.append(command)
    rest = tokens[1:]
    group = commands[0] if hasattr(commands[0], "commands") else None  # a group: db, suppressions, contacts
    if group is not None and (not rest or rest[0].startswith("-")):
        if not group.invoke_without_command:  # `report` runs on its own, with its own options, too
            return [] if not rest or rest[0] == "--help" else [f"{said!r}: {tokens[0]} needs a subcommand"]
    elif group is not None:
        commands = []
        for name in rest[0].split("|"):
            if name not in group.commands:
                return [
                    f"{said!r}: no command {tokens[0]} {name!r} (has: {', '.join(sorted(group.commands))})"
                ]
            commands.append(group.commands[name])
        rest = rest[1:]
    problems = []
    for token in rest:
        option = token.strip("[]").split("=")[0]
        if re.fullmatch(r"--[a-z][a-z0-9-]*", option):
            missing = [c.name for c in commands if option not in _options(c)]
            if missing:
                problems.append(f"{said!r}: {'|'.join(str(m) for m in missing)} has no option {option}")
    return problems


def _known_keys() -> set[str]:
    known = set()
    for key, _field, _default in config_reference.settings_keys():
        parts = key.split(".")
        known.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return known


def key_problems(text: str) -> list[str]:
    """Every config key in backticks (`section.key`, `[section.key]`, `section.key = …`, or its
    `ENGAGEMENT_SECTION__KEY` variable) in `text` that `Settings` does not have."""
    known = _known_keys()
    sections = {key for key in known if "." not in key}
    problems = []
    for snippet in snippets(text):
        named = []
        found = KEY.match(snippet.strip())
        if found:
            parts = found.group(1).split(".")
            if parts[0] in sections and parts[-1] not in FILE_SUFFIXES and found.group(1) not in NOT_CONFIG:
                named.append((found.group(1), parts))
        for variable in ENV.findall(snippet):
            parts = variable.lower().split("__")
            named.append((f"ENGAGEMENT_{variable}", parts))
        for said, parts in named:
            if parts[0] == "webhooks" and len(parts) > 2 and parts[1] not in config.Webhooks.model_fields:
                parts = ["webhooks", "NAME", *parts[2:]]  # any other name is a notify target
            if ".".join(parts) not in known:
                problems.append(f"{said!r}: no such config key")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_and_option_named_exists(page: Path) -> None:
    assert command_problems(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_config_key_named_exists(page: Path) -> None:
    assert key_problems(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "text",
    [
        "Run `engagement frobnicate` daily.",
        "```sh\nengagement db downgrade   # no such thing\n```",
        "`engagement suppressions add|purge`",
        "`engagement report --colour`",
        "```sh\n./dev --config x.toml tick --later\n```",
    ],
)
def test_a_bogus_command_or_option_is_caught(text: str) -> None:
    assert command_problems(text)


@pytest.mark.parametrize(
    "text",
    [
        "Set `limits.emails_per_day`.",
        "`[email.smtp.hostname]`",
        "`server.port.number`",
        "`ENGAGEMENT_API__KEYS=x`",
    ],
)
def test_a_bogus_config_key_is_caught(text: str) -> None:
    assert key_problems(text)


def test_a_real_command_key_or_file_name_passes() -> None:
    text = "`engagement scores --contact ID`, `email.smtp.host`, `webhooks.ops.url`, `templates.py`, `notify.provider = http`"
    assert command_problems(text) == [] and key_problems(text) == []


def test_the_config_reference_is_generated_from_settings() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert config_reference.splice(text) == text, (
        f"docs/operations.md's config reference is out of date: run `{config_reference.UPDATE}`"
    )
    for key, _field, _default in config_reference.settings_keys():
        assert f"| `{key}` |" in text


def test_the_config_reference_never_offers_the_published_secret_as_a_value() -> None:
    rows = [line for line in config_reference.table().splitlines() if config.DEV_SECRET in line]
    assert len(rows) == len(secret_policy.KEYS)
    for row in rows:
        assert "generate one" in row and "refused" in row


def test_the_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"


def _anchors(text: str) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", text), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_are_relative_and_land(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "![" not in text, "no images"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        assert not re.match(r"[a-z]+:", target), f"{page.name}: keep links relative ({target})"
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        assert goal.exists(), f"{page.name}: {target} does not exist"
        if anchor and goal.suffix == ".md":
            assert anchor in _anchors(goal.read_text(encoding="utf-8")), (
                f"{page.name}: no heading for {target}"
            )


def test_the_readme_lists_every_command() -> None:
    root = typer.main.get_command(cli.app)
    wanted = set()
    for name, command in root.commands.items():
        wanted |= {f"{name} {sub}" for sub in command.commands} if hasattr(command, "commands") else {name}
    named = set()
    for line in snippets((REPO / "README.md").read_text(encoding="utf-8")):
        words = line.split()
        if len(words) > 1 and words[0] == "engagement":
            for first in words[1].split("|"):
                subs = words[2].split("|") if len(words) > 2 else []
                named |= {first} | {f"{first} {sub}" for sub in subs}
    assert wanted <= named, f"README.md's list of commands lacks {sorted(wanted - named)}"


def test_the_readme_journey_is_the_shipped_one() -> None:
    shipped = (REPO / "journeys" / "onboarding.yaml").read_text(encoding="utf-8")
    body = shipped[shipped.index("\nid: ") + 1 :]
    assert f"```yaml\n{body}```" in (REPO / "README.md").read_text(encoding="utf-8"), (
        "README.md's example journey differs from journeys/onboarding.yaml: copy it over"
    )
