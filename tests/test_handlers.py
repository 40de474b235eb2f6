"""Every command through the console adapter, errbot-style: push a line, read the answer,
and look at the database to see that what the bot says is what happened."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import SAMPLE, ConsoleChat

from bot import texts
from bot.model import Chat, ChatKind, DeliveryState, Filter, FilterKind, User
from bot.platforms.console import CONSOLE_ADMIN, ConsolePlatform
from bot.render import to_text
from bot.statements import parse_statement
from bot.store import Store
from handlers import REGISTRY
from handlers.context import Services, Throttle

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SAMPLE_TITLE = "Down with US drones, down with US imperialism!"
SAMPLE_SLUG = "down-with-us-drones-down-with-us-imperialism"
NOTHING_CHANGED = "Nothing was changed."


@pytest.fixture
async def twelve(store: Store) -> Store:
    """12 statements a day apart: all #Iran, even ones also #even; Iran or Kurdistan."""
    items = []
    for i in range(1, 13):
        region = "IRAN" if i % 2 else "KURDISTAN"
        tags = "#Iran #even" if i % 2 == 0 else "#Iran"
        text = f"{region} - Statement {i}\n\nParagraph about drones number {i}.\n\n{tags}"
        items.append((parse_statement(text, default_published_at=T0 + timedelta(days=i)), None))
    await store.statements.add_many(items)
    return store


class GroupPlatform(ConsolePlatform):
    """The console adapter, but in a group chat whose admin question has a set answer."""

    def __init__(self, services: Services, user_id: str, chat_admin: bool) -> None:
        super().__init__(services, user_id=user_id, out=io.StringIO())
        self.chat = Chat("console", "group-1", ChatKind.GROUP, "a group")
        self.chat_admin = chat_admin
        self.asked: list[tuple[Chat, User]] = []

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        self.asked.append((chat, sender))
        return self.chat_admin


def titles(text: str) -> list[str]:
    """The statement headlines of a result page, in order."""
    return re.findall(r"^#\d+ (.+)$", text, flags=re.MULTILINE)


def code_of(text: str) -> str:
    match = re.search(r"/confirm ([0-9a-f]{6})\b", text)
    assert match, text
    return match.group(1)


# --------------------------------------------------------------------------- start, help


async def test_start(console: ConsoleChat) -> None:
    assert await console.ask("/start") == (
        "Hello! I publish the statements of our organisation and send new ones to the chats "
        "that subscribe.\n\nTry /latest for the newest statements, /tags to browse by topic, "
        "or /subscribe to get every new statement here. /help lists everything."
    )


async def test_start_deep_links(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/start tag_iran") == await console.ask("/tag iran")
    assert await console.ask("/start region_iran") == await console.ask("/region iran")
    assert await console.ask("/start s_3") == await console.ask("/show 3")
    assert (await console.ask("/start s_3")).startswith(
        "Statement 3\n\nIran · 04 Mar 2024 · #Iran\n\n"
    )
    assert (await console.ask("/start region_iran")).startswith("Statements about Iran")
    assert await console.ask("/start nonsense") == await console.ask("/start")


async def test_help_for_visitor_and_admin(console: ConsoleChat, visitor: ConsoleChat) -> None:
    shown = await visitor.ask("/help")
    assert shown.startswith("Commands\n/start — Welcome and how to begin.\n/help [command] — ")
    assert "/latest [N] — The newest statements (N of them, up to 20)." in shown
    assert "/subscribe [tag <tag> | region <region>] — " in shown
    assert "Admin commands" not in shown and "/publish" not in shown and "/stats" not in shown
    assert shown.endswith("Send /help <command> for details on one command.")
    admin = await console.ask("/help")
    assert "\n\nAdmin commands\n/publish <statement text> — " in admin
    assert "/stats — Numbers about the archive, chats and the outbox." in admin
    assert "/confirm" not in admin  # hidden


async def test_help_for_one_command(console: ConsoleChat, visitor: ConsoleChat) -> None:
    assert await visitor.ask("/help latest") == (
        "/latest [N]\n\nThe newest statements (N of them, up to 20)."
    )
    assert (
        await visitor.ask("/help /tag") == "/tag <tag>\n\nStatements with a hashtag, newest first."
    )
    refused = "I don't know the command /publish. Send /help for the list."
    assert await visitor.ask("/help publish") == refused
    assert (await console.ask("/help publish")).startswith("/publish <statement text>\n\n")
    assert await visitor.ask("/help nope") == (
        "I don't know the command /nope. Send /help for the list."
    )


async def test_every_command_has_help_and_usage() -> None:
    for name, spec in REGISTRY.items():
        assert spec.help, name
        assert spec.usage.split()[0] == name


# --------------------------------------------------------------------------- latest and pages


async def test_latest_empty_archive(console: ConsoleChat) -> None:
    assert await console.ask("/latest") == "There are no statements yet."


async def test_latest_one_exact(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/latest 1") == (
        "Latest statements\n\n"
        "#12 Statement 12\n\n"
        "Kurdistan · 13 Mar 2024 · #Iran #even\n\n"
        "Paragraph about drones number 12.\n\n"
        "[Read #12: /show 12]\n"
        "[Next ▶: /latest 1 page 2]"
    )


async def test_latest_pages_follow_the_buttons(console: ConsoleChat, twelve: Store) -> None:
    page1 = await console.replies("/latest")
    assert len(page1) == 1
    text1 = await console.ask("/latest")
    assert titles(text1) == [f"Statement {i}" for i in (12, 11, 10, 9, 8)]
    read_row, nav = page1[0].buttons
    assert [b.command for b in read_row] == ["show 12", "show 11", "show 10", "show 9", "show 8"]
    assert [(b.label, b.command) for b in nav] == [("Next ▶", "latest page 2")]

    page2 = (await console.replies("/" + nav[0].command))[0]
    text2 = await console.ask("/latest page 2")
    assert text2.startswith("Latest statements (page 2)\n\n")
    assert titles(text2) == [f"Statement {i}" for i in (7, 6, 5, 4, 3)]
    nav2 = page2.buttons[-1]
    assert [(b.label, b.command) for b in nav2] == [
        ("◀ Previous", "latest page 1"),
        ("Next ▶", "latest page 3"),
    ]
    assert await console.ask("/" + nav2[0].command) == text1

    page3 = (await console.replies("/" + nav2[1].command))[0]
    assert titles(await console.ask("/latest page 3")) == ["Statement 2", "Statement 1"]
    assert [b.command for b in page3.buttons[-1]] == ["latest page 2"]  # no Next
    assert await console.ask("/latest page 4") == texts.NO_MORE


async def test_latest_n_pages(console: ConsoleChat, twelve: Store) -> None:
    assert len(titles(await console.ask("/latest 6"))) == 6
    page2 = await console.ask("/latest 6 page 2")
    assert titles(page2) == [f"Statement {i}" for i in range(6, 0, -1)]
    assert "Next" not in page2
    assert await console.ask("/latest 6 page 3") == "That page is empty: there are no more results."
    assert len(titles(await console.ask("/latest 20"))) == 12


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/latest 0", "N must be between 1 and 20."),
        ("/latest 21", "N must be between 1 and 20."),
        ("/latest -1", "'-1' is not a number. Usage: /latest [N]"),
        ("/latest x", "'x' is not a number. Usage: /latest [N]"),
    ],
)
async def test_latest_bounds(console: ConsoleChat, twelve: Store, line: str, answer: str) -> None:
    assert await console.ask(line) == answer


# --------------------------------------------------------------------------- tag, region, search


async def test_tag_pages(console: ConsoleChat, twelve: Store) -> None:
    first = await console.replies("/tag IRAN")
    text = await console.ask("/tag IRAN")
    assert text.startswith("Statements tagged #Iran\n\n")
    assert titles(text) == [f"Statement {i}" for i in (12, 11, 10, 9, 8)]
    assert first[0].buttons[-1][0].command == "tag Iran page 2"
    assert titles(await console.ask("/tag #even")) == [f"Statement {i}" for i in (12, 10, 8, 6, 4)]
    third = await console.ask("/tag iran page 3")
    assert third.startswith("Statements tagged #Iran (page 3)")
    assert titles(third) == ["Statement 2", "Statement 1"]
    assert await console.ask("/tag iran page 4") == texts.NO_MORE


async def test_unknown_tag_suggests(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/tag irn") == "No statement is tagged #irn. Did you mean #Iran?"
    assert await console.ask("/tag #evem") == "No statement is tagged #evem. Did you mean #even?"
    assert await console.ask("/tag zzz") == "No statement is tagged #zzz. /tags lists them all."


async def test_region(console: ConsoleChat, twelve: Store) -> None:
    for spelling in ("iran", "IRN", "IR", "Islamic Republic of Iran"):
        text = await console.ask(f"/region {spelling}")
        assert text.startswith("Statements about Iran\n\n"), spelling
        assert titles(text) == [f"Statement {i}" for i in (11, 9, 7, 5, 3)]
    kurdistan = await console.ask("/region kurdistan")
    assert titles(kurdistan) == [f"Statement {i}" for i in (12, 10, 8, 6, 4)]
    assert titles(await console.ask("/region Kurdistan page 2")) == ["Statement 2"]


async def test_unknown_region(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/region Atlantis") == (
        "No statement is about Atlantis. /regions lists them all."
    )
    # A real country with no statement is named properly, not as typed.
    assert (
        await console.ask("/region fr") == "No statement is about France. /regions lists them all."
    )
    assert await console.ask("/region Kurdistn") == (
        "No statement is about Kurdistn. Did you mean Kurdistan?"
    )


async def test_search(console: ConsoleChat, twelve: Store) -> None:
    text = await console.ask("/search drones")
    assert text.startswith("Statements with “drones”\n\n")
    assert titles(text) == [f"Statement {i}" for i in (12, 11, 10, 9, 8)]
    assert titles(await console.ask("/search drone* number")) == titles(text)
    assert titles(await console.ask("/search statement 7")) == ["Statement 7"]
    assert await console.ask("/search nothing here") == "No statement contains “nothing here”."
    assert await console.ask('/search "') == 'No statement contains “"”.'
    assert titles(await console.ask("/search drones page 3")) == ["Statement 2", "Statement 1"]
    assert await console.ask("/search drones page 4") == texts.NO_MORE


async def test_search_too_broad(console: ConsoleChat, store: Store) -> None:
    many = " ".join(f"zz{i:03d}" for i in range(60))
    await store.statements.add(parse_statement(f"Many\n\n{many}"))
    assert await console.ask("/search zz*") == "zz* matches too many words; add a letter or two."
    assert titles(await console.ask("/search zz05*")) == ["Many"]


async def test_tag_whose_statements_are_gone(console: ConsoleChat, store: Store) -> None:
    await store.statements.add(parse_statement("T\n\nb\n\n#gone #kept"), import_key="k")
    await store.statements.add(parse_statement("T\n\nb2\n\n#kept"), import_key="k")
    assert await console.ask("/tag gone") == "No statement is tagged #gone. /tags lists them all."
    assert await console.ask("/tags") == "Hashtags\n\n#kept (1)\n\n[#kept: /tag kept]"


# --------------------------------------------------------------------------- show, tags, regions


async def test_show(console: ConsoleChat, sample_loaded: Store) -> None:
    text = await console.ask("/show 1")
    assert text.startswith(f"{SAMPLE_TITLE}\n\nIran · ")
    assert " · #Iran #USdrones #imperialistwar\n\nThe friction the US is creating" in text
    assert text.endswith("Imperialists out of Iran!\n\nLong live international solidarity!")
    assert text.count("\n\n") == 11  # 12 blocks: headline, meta, the ten paragraphs
    assert await console.ask(f"/show {SAMPLE_SLUG}") == text
    assert await console.ask(f"/show {SAMPLE_SLUG.upper()}") == text
    assert await console.ask("/show #1") == text
    assert await console.ask("/show 99") == "There is no statement 99. /latest shows the newest."
    assert await console.ask("/show no-such-slug") == (
        "There is no statement no-such-slug. /latest shows the newest."
    )


async def test_tags_and_regions(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/tags") == (
        "Hashtags\n\n#Iran (12), #even (6)\n\n[#Iran: /tag Iran]   [#even: /tag even]"
    )
    assert await console.ask("/regions") == (
        "Regions\n\nIran (6), Kurdistan (6)\n\n"
        "[Iran: /region Iran]   [Kurdistan: /region Kurdistan]"
    )


async def test_tags_and_regions_empty(console: ConsoleChat) -> None:
    assert await console.ask("/tags") == "Hashtags\n\nNone yet."
    assert await console.ask("/regions") == "Regions\n\nNone yet."


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/tag", "Usage: /tag <tag>"),
        ("/tag two words", "Usage: /tag <tag>"),
        ("/region", "Usage: /region <region>"),
        ("/search", "Search for what? Usage: /search <words>"),
        ("/show", "Usage: /show <id>"),
        ("/show 1 2", "Usage: /show <id>"),
        ("/subscribe tag", "Usage: /subscribe [tag <tag> | region <region>]"),
        ("/subscribe sideways", "Usage: /subscribe [tag <tag> | region <region>]"),
        ("/unsubscribe region", "Usage: /unsubscribe [all | tag <tag> | region <region>]"),
        ("/publish", texts.PUBLISH_NEEDS_TEXT.format(p="/")),
        ("/announce", "Usage: /announce [tag:<tag> | region:<region>] <text>"),
        ("/announce tag:Iran", "Usage: /announce [tag:<tag> | region:<region>] <text>"),
    ],
)
async def test_missing_arguments(
    console: ConsoleChat, twelve: Store, line: str, answer: str
) -> None:
    assert await console.ask(line) == answer


async def test_too_long_input(console: ConsoleChat, twelve: Store) -> None:
    assert await console.ask("/tag " + "x" * 501) == (
        "That is too long: 501 characters, at most 500 here."
    )
    assert await console.ask("/search " + "x" * 201) == (
        "That is too long: 201 characters, at most 200 here."
    )
    assert await console.ask("/announce " + "x" * 4001) == (
        "That is too long: 4001 characters, at most 4000 here."
    )


async def test_unknown_command(console: ConsoleChat, visitor: ConsoleChat) -> None:
    assert await console.ask("/lates") == "I don't know the command /lates. Did you mean /latest?"
    assert await console.ask("/SUBSCRIBES") == (
        "I don't know the command /subscribes. Did you mean /subscribe?"
    )
    assert (
        await console.ask("/xyzzy") == "I don't know the command /xyzzy. Send /help for the list."
    )
    # Admin commands are not suggested to others.
    assert "/stats" not in await visitor.ask("/statz")
    assert await console.ask("/statz") == "I don't know the command /statz. Did you mean /stats?"


async def test_plain_text_gets_help(console: ConsoleChat) -> None:
    assert (await console.ask("hello bot")).startswith("Commands\n")
    assert await console.ask("   ") == ""


async def test_internal_error_is_one_line(
    console: ConsoleChat, twelve: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(twelve.statements, "latest", broken)
    assert await console.ask("/latest") == texts.INTERNAL_ERROR


# --------------------------------------------------------------------------- subscriptions


async def test_subscribe_flow(console: ConsoleChat, twelve: Store) -> None:
    chat = console.platform.chat
    assert await console.ask("/subscriptions") == (
        "This chat has no subscriptions. /subscribe to get new statements here."
    )
    assert await console.ask("/subscribe") == (
        "Subscribed: this chat will receive every new statement."
    )
    assert await console.ask("/subscribe all") == "This chat already receives every new statement."
    assert await console.ask("/subscribe tag IRAN") == (
        "Subscribed: this chat will receive new statements tagged #Iran.\n\n"
        "(It also receives every statement, so this adds nothing until you /unsubscribe all.)"
    )
    assert await console.ask("/subscribe region IRN") == (
        "Subscribed: this chat will receive new statements about Iran.\n\n"
        "(It also receives every statement, so this adds nothing until you /unsubscribe all.)"
    )
    assert await console.ask("/subscribe #even") == (
        "Subscribed: this chat will receive new statements tagged #even.\n\n"
        "(It also receives every statement, so this adds nothing until you /unsubscribe all.)"
    )
    assert await console.ask("/subscribe tag:iran") == (
        "This chat already receives new statements tagged #Iran."
    )
    assert await console.ask("/subscribe tag nope") == (
        "No statement is tagged #nope. /tags lists them all."
    )
    assert await console.ask("/subscriptions") == (
        "This chat receives\n• every new statement\n• new statements tagged #Iran\n"
        "• new statements about Iran\n• new statements tagged #even"
    )
    subs = await twelve.chats.for_chat(chat)
    assert [str(s.filter) for s in subs] == ["all", "tag:iran", "region:cc:ir", "tag:even"]
    assert {s.created_by for s in subs} == {CONSOLE_ADMIN}

    assert await console.ask("/unsubscribe tag iran") == (
        "Unsubscribed: this chat no longer receives new statements tagged #Iran."
    )
    assert await console.ask("/unsubscribe tag iran") == (
        "This chat is not subscribed to new statements tagged #Iran. "
        "/subscriptions shows what it is."
    )
    assert await console.ask("/unsubscribe region:Iran") == (
        "Unsubscribed: this chat no longer receives new statements about Iran."
    )
    assert [str(s.filter) for s in await twelve.chats.for_chat(chat)] == ["all", "tag:even"]
    assert await console.ask("/unsubscribe") == "Unsubscribed from everything (2 subscriptions)."
    assert await twelve.chats.for_chat(chat) == []
    assert await console.ask("/unsubscribe all") == (
        "This chat has no subscriptions. /subscribe to get new statements here."
    )


async def test_unsubscribe_from_a_tag_that_left_the_archive(
    console: ConsoleChat, store: Store
) -> None:
    added = await store.statements.add(parse_statement("T\n\nb\n\n#gone"))
    await console.ask("/subscribe tag gone")
    await store.statements.delete(added.statement.id or 0)
    assert await console.ask("/unsubscribe tag gone") == (
        "Unsubscribed: this chat no longer receives new statements tagged #gone."
    )
    assert await store.chats.for_chat(console.platform.chat) == []


async def test_group_subscribe_needs_a_chat_admin(services: Services, twelve: Store) -> None:
    member = GroupPlatform(services, "member", chat_admin=False)
    chat_admin = GroupPlatform(services, "owner", chat_admin=True)
    refused = (
        "Only admins of this chat (or the bot's admins) may change its subscriptions. "
        "Nothing was changed."
    )
    assert await ConsoleChat(member).ask("/subscribe") == refused
    assert await ConsoleChat(member).ask("/unsubscribe") == refused
    assert member.asked == [(member.chat, member.user)] * 2
    assert await twelve.chats.for_chat(member.chat) == []

    assert await ConsoleChat(chat_admin).ask("/subscribe tag iran") == (
        "Subscribed: this chat will receive new statements tagged #Iran."
    )
    subs = await twelve.chats.for_chat(chat_admin.chat)
    assert [(str(s.filter), s.created_by) for s in subs] == [("tag:iran", "console:owner")]
    # Anyone in the group may look.
    assert await ConsoleChat(member).ask("/subscriptions") == (
        "This chat receives\n• new statements tagged #Iran"
    )


async def test_bot_admin_may_subscribe_any_group(services: Services, twelve: Store) -> None:
    admin = GroupPlatform(services, "local", chat_admin=False)  # console:local is a bot admin
    assert await ConsoleChat(admin).ask("/subscribe") == (
        "Subscribed: this chat will receive every new statement."
    )
    assert admin.asked == []  # no need to ask the platform


# --------------------------------------------------------------------------- admin commands


@pytest.mark.parametrize("line", ["/publish T\n\nbody", "/announce hi", "/stats", "/status"])
async def test_admin_commands_refused_for_others(
    visitor: ConsoleChat, twelve: Store, line: str
) -> None:
    name = line[1:].split()[0]
    answer = await visitor.ask(line)
    assert answer == f"Only the bot's admins may use /{name}. Nothing was changed."
    assert answer.endswith(NOTHING_CHANGED)
    (entry,) = await twelve.audit.recent()
    assert (entry.actor, entry.action, entry.detail) == (
        "console:visitor",
        f"refused:{name}",
        "console:visitor",
    )
    assert await twelve.statements.count() == 12
    assert await twelve.outbox.backlog() == {}


async def test_confirm_and_cancel_refused_for_others(visitor: ConsoleChat) -> None:
    for name in ("confirm", "cancel"):
        assert await visitor.ask(f"/{name} abcdef") == (
            f"Only the bot's admins may use /{name}. Nothing was changed."
        )


PUBLISH = "/publish IRAN - Hands off Iran\n\nNo war on Iran.\n\nNot one more drone.\n\n#Iran #peace"


async def subscribe_chats(store: Store) -> None:
    """Three chats: one wants all, one #Iran (and all), one only #other; one is blocked."""
    tg = "telegram"
    await store.chats.subscribe(Chat(tg, "1", ChatKind.PRIVATE), Filter(FilterKind.ALL), "all", "u")
    await store.chats.subscribe(
        Chat(tg, "1", ChatKind.PRIVATE), Filter(FilterKind.TAG, "iran"), "Iran", "u"
    )
    await store.chats.subscribe(
        Chat(tg, "2", ChatKind.GROUP), Filter(FilterKind.TAG, "iran"), "Iran", "u"
    )
    await store.chats.subscribe(
        Chat(tg, "3", ChatKind.GROUP), Filter(FilterKind.TAG, "other"), "other", "u"
    )
    await store.chats.subscribe(Chat(tg, "4", ChatKind.PRIVATE), Filter(FilterKind.ALL), "all", "u")
    await store.chats.deactivate(tg, "4", "blocked")


async def test_publish_flow(console: ConsoleChat, twelve: Store) -> None:
    await subscribe_chats(twelve)
    _, statement, confirm = await console.replies(PUBLISH)
    text = await console.ask(PUBLISH)  # a second preview, with its own code
    assert text.startswith(
        "Preview: this is what subscribers will see.\n\nHands off Iran\n\nIran · "
    )
    assert "#Iran #peace\n\nNo war on Iran.\n\nNot one more drone." in text
    assert statement.plain.startswith("Hands off Iran")
    code = code_of(text)
    assert re.search(
        rf"It will go to 2 chats\. Confirm within 10 minutes: /confirm {code}\n\n"
        rf"\[✅ Publish: /confirm {code}\]   \[✖ Cancel: /cancel {code}\]$",
        text,
    )
    assert await twelve.statements.count() == 12  # nothing before the confirmation

    assert await console.ask(f"/confirm {code}") == "Published as #13; sending it to 2 chats."
    stored = await twelve.statements.get(13)
    assert stored is not None
    assert (stored.title, stored.tags, stored.regions) == (
        "Hands off Iran",
        ("Iran", "peace"),
        ("Iran",),
    )
    due = await twelve.outbox.due("telegram", 10)
    assert sorted((d.chat.chat_id, d.statement_id, d.state) for d in due) == [
        ("1", 13, DeliveryState.PENDING),
        ("2", 13, DeliveryState.PENDING),
    ]
    assert [(e.action, e.detail) for e in await twelve.audit.recent(1)] == [
        ("publish", "statement 13")
    ]
    # The code is spent; the other preview's code still waits, but publishing it again
    # is refused as a duplicate at preview time.
    assert await console.ask(f"/confirm {code}") == (
        f"There is no pending publication with code {code} (it may have expired)."
    )
    assert (
        await console.ask(PUBLISH) == "This statement is already published as #13; nothing to do."
    )
    assert code_of(to_text(confirm)) != code


async def test_publish_cancel(console: ConsoleChat, twelve: Store) -> None:
    code = code_of(await console.ask(PUBLISH))
    assert await console.ask(f"/cancel {code}") == "Cancelled; nothing was published."
    assert await console.ask(f"/confirm {code}") == (
        f"There is no pending publication with code {code} (it may have expired)."
    )
    assert await twelve.statements.count() == 12
    assert await console.ask("/cancel") == "Nothing is waiting for your confirmation."


async def test_publish_yes_no_in_the_console(console: ConsoleChat, twelve: Store) -> None:
    await console.ask(PUBLISH)
    assert await console.ask("n") == "Cancelled; nothing was published."
    await console.ask(PUBLISH)
    assert await console.ask("y") == "Published as #13; sending it to 0 chats."
    assert await console.ask("y") == "Nothing is waiting for your confirmation."


async def test_publish_expired_or_unknown_code(
    console: ConsoleChat, services: Services, twelve: Store
) -> None:
    services.pending.ttl = 0.0
    code = code_of(await console.ask(PUBLISH))
    assert await console.ask(f"/confirm {code}") == (
        f"There is no pending publication with code {code} (it may have expired)."
    )
    assert await console.ask("/confirm 123abc") == (
        "There is no pending publication with code 123abc (it may have expired)."
    )
    assert await twelve.statements.count() == 12


async def test_another_admin_cannot_confirm(
    console: ConsoleChat, services: Services, twelve: Store
) -> None:
    services.admins = frozenset({CONSOLE_ADMIN, "console:other"})
    other = ConsoleChat(ConsolePlatform(services, user_id="other", out=io.StringIO()))
    code = code_of(await console.ask(PUBLISH))
    assert await other.ask(f"/confirm {code}") == (
        f"There is no pending publication with code {code} (it may have expired)."
    )
    assert await console.ask(f"/confirm {code}") == "Published as #13; sending it to 0 chats."


async def test_publish_duplicate_of_archive(console: ConsoleChat, sample_loaded: Store) -> None:
    assert await console.ask("/publish " + SAMPLE.read_text(encoding="utf-8")) == (
        "This statement is already published as #1; nothing to do."
    )


async def test_publish_invalid(console: ConsoleChat) -> None:
    answer = await console.ask("/publish #only #tags")
    assert answer == (
        "That is not a statement I can publish: 1: headline missing: "
        "the first line holds only hashtags"
    )


async def test_announce_with_tag(console: ConsoleChat, twelve: Store) -> None:
    await subscribe_chats(twelve)
    text = await console.ask("/announce tag:IRAN Meeting tonight at 8.\n\nBring friends.")
    assert text.startswith(
        "Announcement preview:\n\nAnnouncement\n\nMeeting tonight at 8.\n\nBring friends.\n\n"
        "It will go to 2 chats."
    )
    code = code_of(text)
    assert await console.ask(f"/confirm {code}") == "Announcement #1 is on its way to 2 chats."
    assert await twelve.outbox.announcement_text(1) == "Meeting tonight at 8.\n\nBring friends."
    due = await twelve.outbox.due("telegram", 10)
    assert sorted((d.chat.chat_id, d.announcement_id) for d in due) == [("1", 1), ("2", 1)]
    assert [(e.action, e.detail) for e in await twelve.audit.recent(1)] == [
        ("announce", "announcement 1")
    ]


async def test_announce_to_all_and_unknown_filters(console: ConsoleChat, twelve: Store) -> None:
    await subscribe_chats(twelve)
    text = await console.ask("/announce Hello everyone")
    assert "Announcement\n\nHello everyone\n\nIt will go to 3 chats." in text
    assert await console.ask("/announce tag:nope hi") == (
        "No statement is tagged #nope. /tags lists them all."
    )
    # Chats that take everything get filtered announcements too.
    region = await console.ask("/announce region:Kurdistan hi")
    assert "It will go to 1 chats." in region
    assert await console.ask("/announce region:Atlantis hi") == (
        "No statement is about Atlantis. /regions lists them all."
    )


async def test_stats_and_status(console: ConsoleChat, twelve: Store) -> None:
    await subscribe_chats(twelve)
    assert await console.ask("/status") == "Nothing has been broadcast yet."
    code = code_of(await console.ask(PUBLISH))
    await console.ask(f"/confirm {code}")
    assert await console.ask("/stats") == (
        "Statistics\nStatements: 13\nHashtags: 3, regions: 2\n"
        "Chats reachable: 4, subscribed: 3, subscriptions: 4\n"
        "Outbox backlog: telegram 2"
    )
    assert await console.ask("/status") == (
        "Latest broadcasts\nstatement #13 Hands off Iran — "
        "telegram: 0 sent, 2 pending, 0 failed, 0 dropped"
    )


# --------------------------------------------------------------------------- throttle


async def test_throttle(visitor: ConsoleChat, console: ConsoleChat, twelve: Store) -> None:
    for _ in range(20):
        assert (await visitor.ask("/tags")).startswith("Hashtags")
    assert await visitor.ask("/tags") == (
        "Slow down, please: at most 20 commands a minute. I will answer again in 60 s."
    )
    assert await visitor.replies("/tags") == []
    assert await visitor.replies("/help") == []
    # Admins are not throttled.
    for _ in range(25):
        assert (await console.ask("/tags")).startswith("Hashtags")


def test_throttle_window() -> None:
    throttle = Throttle(3, window=60.0)
    assert [throttle.check("a", t)[0] for t in (0, 1, 2)] == ["ok", "ok", "ok"]
    assert throttle.check("a", 3) == ("warn", 57.0)
    assert throttle.check("a", 4)[0] == "drop"
    assert throttle.check("b", 4)[0] == "ok"  # per sender
    assert throttle.check("a", 60)[0] == "ok"  # the first hit left the window
    assert throttle.check("a", 60.5)[0] == "warn"  # a new burst gets a new warning
