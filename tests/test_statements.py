"""Statement files → Statement: both formats, every rejection with its path and line."""

from __future__ import annotations

import os
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.model import Statement
from bot.statements import (
    StatementError,
    content_hash,
    parse_file,
    parse_statement,
    slugify,
    statement_files,
)

SAMPLE = Path(__file__).parent.parent / "samples/statements/iran-down-with-us-drones.txt"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """A file in tmp_path; str content is written as UTF-8 without newline translation."""
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def error_of(text: str, path: str = "s.txt") -> StatementError:
    with pytest.raises(StatementError) as info:
        parse_statement(text, path=path)
    return info.value


def file_error(path: Path) -> StatementError:
    with pytest.raises(StatementError) as info:
        parse_file(path)
    return info.value


# --------------------------------------------------------------------------- StatementError


def test_error_text_is_path_line_reason() -> None:
    e = StatementError("a/b.txt", 3, "bad thing")
    assert (e.path, e.line, e.reason) == ("a/b.txt", 3, "bad thing")
    assert str(e) == "a/b.txt:3: bad thing"
    assert isinstance(e, ValueError)


def test_error_text_omits_missing_parts() -> None:
    assert str(StatementError("a.txt", None, "gone")) == "a.txt: gone"
    assert str(StatementError(None, 7, "oops")) == "7: oops"
    assert str(StatementError(None, None, "plain")) == "plain"


def test_error_survives_pickling() -> None:
    e = pickle.loads(pickle.dumps(StatementError("x.md", 2, "why")))
    assert (e.path, e.line, e.reason, str(e)) == ("x.md", 2, "why", "x.md:2: why")


# --------------------------------------------------------------------------- the sample


def test_sample_file() -> None:
    st = parse_file(SAMPLE)
    assert st.regions == ("Iran",)
    assert st.title == "Down with US drones, down with US imperialism!"
    assert st.tags == ("Iran", "USdrones", "imperialistwar")
    assert len(st.paragraphs) == 10
    assert st.paragraphs[0].startswith("The friction the US")
    assert st.paragraphs[-1] == "Long live international solidarity!"
    assert st.slug == "down-with-us-drones-down-with-us-imperialism"
    assert st.source is None and st.language is None and st.id is None
    assert len(st.content_hash) == 64 and int(st.content_hash, 16) >= 0
    assert st.content_hash == content_hash(st, include_published_at=False)
    mtime = datetime.fromtimestamp(SAMPLE.stat().st_mtime, UTC)
    assert st.published_at == mtime


def test_sample_body_has_no_tag_line_and_no_line_breaks() -> None:
    st = parse_file(SAMPLE)
    assert all("#" not in p and "\n" not in p for p in st.paragraphs)
    assert "\u201cunprovoked attack\u201d" in st.paragraphs[0]


def test_sample_hash_ignores_file_mtime(tmp_path: Path) -> None:
    """A checkout rewrites mtimes; the same words must stay the same statement."""
    copy = write(tmp_path, "copy.txt", SAMPLE.read_bytes())
    os.utime(copy, (1_000_000, 1_000_000))
    a, b = parse_file(SAMPLE), parse_file(copy)
    assert a.published_at != b.published_at
    assert a.content_hash == b.content_hash


# --------------------------------------------------------------------------- plain text


def test_plain_text_basic() -> None:
    text = "USA - Hands off Venezuela\n\nFirst line\n  continues here.  \n\n\n\nSecond.\n\n"
    st = parse_statement(text + "#Venezuela #USA\n")
    assert st.regions == ("USA",)
    assert st.title == "Hands off Venezuela"
    assert st.paragraphs == ("First line continues here.", "Second.")
    assert st.tags == ("Venezuela", "USA")
    assert st.published_at is None
    assert st.slug == "hands-off-venezuela"


def test_leading_blank_lines_before_headline() -> None:
    st = parse_statement("\n\n   \nIRAN - Title\nBody right below.\n")
    assert (st.regions, st.title, st.paragraphs) == (("Iran",), "Title", ("Body right below.",))


@pytest.mark.parametrize("dash", ["-", "\u2013", "\u2014"])
def test_separators(dash: str) -> None:
    st = parse_statement(f"SOUTH AFRICA {dash} Amandla!\n\nText.")
    assert st.regions == ("South Africa",)
    assert st.title == "Amandla!"


def test_first_separator_wins() -> None:
    st = parse_statement("IRAN - War - and peace\n\nText.")
    assert st.regions == ("Iran",)
    assert st.title == "War - and peace"


@pytest.mark.parametrize(
    ("headline", "regions", "title"),
    [
        ("USA / MEXICO - Border", ("USA", "Mexico"), "Border"),
        ("IRAN, IRAQ - Wars", ("Iran", "Iraq"), "Wars"),
        ("UK/US - Allies", ("UK", "US"), "Allies"),
        ("DRC - Congo", ("DRC",), "Congo"),
        ("U.S. \u2014 Empire", ("U.S.",), "Empire"),
        ("SOUTH AFRICA / USA - Trade", ("South Africa", "USA"), "Trade"),
        ("GUINEA-BISSAU - Independence", ("Guinea-Bissau",), "Independence"),
        ("CÔTE D'IVOIRE - Cocoa", ("Côte D'Ivoire",), "Cocoa"),
        ("NEW ZEALAND - Far away", ("New Zealand",), "Far away"),
        (
            "DEMOCRATIC REPUBLIC OF THE CONGO - Mines",
            ("Democratic Republic of the Congo",),
            "Mines",
        ),
        ("IRAN / IRAN - Twice", ("Iran",), "Twice"),
    ],
)
def test_regions(headline: str, regions: tuple[str, ...], title: str) -> None:
    st = parse_statement(f"{headline}\n\nText.")
    assert st.regions == regions
    assert st.title == title


@pytest.mark.parametrize(
    "headline",
    [
        "Why we fight - a reply",
        "Iran - lowercase is not a region",
        "THE LONG AND WINDING ROAD HOME - too many words",
        "IRAN 2024 - digits",
        "USA / - empty part",
        "I - one letter",
        "No separator at all",
        "IRAN-IRAQ war",
    ],
)
def test_prefix_that_is_not_a_region_stays_in_title(headline: str) -> None:
    st = parse_statement(f"{headline}\n\nText.")
    assert st.regions == ()
    assert st.title == headline


def test_headline_tabs_and_nbsp_are_normalised() -> None:
    st = parse_statement("\tIRAN\u00a0-\u00a0Down\twith   drones \u202f\n\nText.")
    assert st.regions == ("Iran",)
    assert st.title == "Down with drones"


def test_bom_is_ignored_in_text_and_file(tmp_path: Path) -> None:
    text = "IRAN - Title\n\nText."
    assert parse_statement("\ufeff" + text).regions == ("Iran",)
    st = parse_file(write(tmp_path, "bom.txt", b"\xef\xbb\xbf" + text.encode()))
    assert (st.regions, st.title, st.paragraphs) == (("Iran",), "Title", ("Text.",))


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_line_endings(tmp_path: Path, newline: str) -> None:
    text = newline.join(["IRAN - Title", "", "one", "two", "", "three", "", "#a #b", ""])
    st = parse_file(write(tmp_path, "s.txt", text))
    assert st.paragraphs == ("one two", "three")
    assert st.tags == ("a", "b")
    assert all("\r" not in p for p in st.paragraphs)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_numbers_with_other_line_endings(newline: str) -> None:
    e = error_of(newline.join(["", "", "#only #tags"]))
    assert e.line == 3


def test_same_text_same_hash_whatever_the_line_endings() -> None:
    a = parse_statement("IRAN - T\n\nA b.\n\n#x")
    b = parse_statement("\ufeffIRAN - T\r\n\r\nA  b.\r\n\r\n#X\r\n")
    assert a.content_hash == b.content_hash


# --------------------------------------------------------------------------- hashtags


def test_odd_trailing_hash_in_tag_line() -> None:
    st = parse_statement("IRAN - T\n\nText.\n\n#Iran #USdrones #imperialistwar#")
    assert st.tags == ("Iran", "USdrones", "imperialistwar")
    assert st.paragraphs == ("Text.",)


def test_tag_line_spread_over_lines_and_with_commas() -> None:
    st = parse_statement("IRAN - T\n\nText.\n\n#one, #two\n#three")
    assert st.tags == ("one", "two", "three")
    assert st.paragraphs == ("Text.",)


def test_body_hashtags_count_and_text_stays() -> None:
    st = parse_statement(
        "IRAN - T\n\nSolidarity with #Gaza and #Iran_2024!\n\nMore #Gaza.\n\n#iran #Solidarity"
    )
    assert st.paragraphs == ("Solidarity with #Gaza and #Iran_2024!", "More #Gaza.")
    # tag line first, then the body; case-insensitive duplicates keep the first spelling
    assert st.tags == ("iran", "Solidarity", "Gaza", "Iran_2024")


def test_unicode_hashtags() -> None:
    st = parse_statement("T\n\nΑλληλεγγύη #Ελλάδα und #Großdemo.")
    assert st.tags == ("Ελλάδα", "Großdemo")


@pytest.mark.parametrize(
    "body",
    [
        "It&#39;s an entity, not a tag.",
        "See https://example.org/page#section and example.org/#anchor.",
        "We are #1 and ## not a heading tag, issue#5.",
        "A lone # sign.",
    ],
)
def test_things_that_are_not_hashtags(body: str) -> None:
    st = parse_statement(f"T\n\n{body}")
    assert st.tags == ()
    assert st.paragraphs == (body,)


def test_paragraph_with_words_and_tags_is_not_a_tag_line() -> None:
    st = parse_statement("T\n\nText.\n\nFollow us #solidarity")
    assert st.paragraphs == ("Text.", "Follow us #solidarity")
    assert st.tags == ("solidarity",)


# --------------------------------------------------------------------------- plain-text errors


def test_empty_file() -> None:
    for text in ("", "   \n\n\t\n", "\ufeff"):
        e = error_of(text)
        assert (e.path, e.line, e.reason) == ("s.txt", 1, "empty file")


def test_empty_file_on_disk(tmp_path: Path) -> None:
    p = write(tmp_path, "empty.txt", b"")
    e = file_error(p)
    assert (e.path, e.line, e.reason) == (str(p), 1, "empty file")
    assert str(e) == f"{p}:1: empty file"


def test_only_hashtags_means_no_headline() -> None:
    e = error_of("\n\n#Iran #USdrones\n")
    assert (e.path, e.line) == ("s.txt", 3)
    assert e.reason.startswith("headline missing")
    assert "hashtags" in e.reason


def test_title_but_no_text() -> None:
    e = error_of("\nIRAN - Title\n\n\n")
    assert (e.path, e.line, e.reason) == ("s.txt", 2, "statement has a title but no text")


def test_title_and_tag_line_but_no_text() -> None:
    e = error_of("IRAN - Title\n\n#Iran #USA")
    assert (e.line, e.reason) == (1, "statement has a title but no text")


def test_title_too_long() -> None:
    e = error_of("\n\n" + "x" * 301 + "\n\nText.")
    assert (e.path, e.line) == ("s.txt", 3)
    assert e.reason.startswith("title too long: 301 characters")
    assert parse_statement("IRAN - " + "x" * 300 + "\n\nok").title == "x" * 300


def test_nul_bytes_in_text_mean_binary() -> None:
    e = error_of("T\n\nText\x00more")
    assert (e.line, e.reason) == (3, "binary file (contains NUL bytes), not a statement")


def test_binary_file(tmp_path: Path) -> None:
    p = write(tmp_path, "img.txt", b"IRAN - x\r\n\r\n\x89PNG\x00\x00")
    e = file_error(p)
    assert (e.path, e.line) == (str(p), 3)
    assert "binary" in e.reason


def test_utf16_file(tmp_path: Path) -> None:
    p = write(tmp_path, "u16.txt", "IRAN - x\n\ny".encode("utf-16"))
    e = file_error(p)
    assert (e.path, e.line) == (str(p), 1)
    assert "UTF-16" in e.reason


def test_non_utf8_byte_names_its_line(tmp_path: Path) -> None:
    data = b"IRAN - Title\n\nFirst.\n\nCaf\xe9 noir.\n"
    p = write(tmp_path, "latin1.txt", data)
    e = file_error(p)
    assert (e.path, e.line) == (str(p), 5)
    assert e.reason.startswith("not UTF-8: byte 0xE9 at offset")


def test_non_utf8_line_counts_crlf_once(tmp_path: Path) -> None:
    p = write(tmp_path, "crlf.txt", b"\xef\xbb\xbfT\r\n\r\nok\r\nbad \xff\r\n")
    assert file_error(p).line == 4


# --------------------------------------------------------------------------- files and mtime


def test_parse_file_uses_mtime_as_publication_time(tmp_path: Path) -> None:
    p = write(tmp_path, "s.txt", "T\n\nText.")
    os.utime(p, (1_700_000_000, 1_700_000_000))
    st = parse_file(p)
    assert st.published_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_parse_file_accepts_str_path(tmp_path: Path) -> None:
    p = write(tmp_path, "s.txt", "T\n\nText.")
    assert parse_file(str(p)).title == "T"


def test_parse_file_missing(tmp_path: Path) -> None:
    p = tmp_path / "nope.txt"
    e = file_error(p)
    assert (e.path, e.line, e.reason) == (str(p), None, "no such file or folder")


def test_default_published_at() -> None:
    when = datetime(2024, 5, 1, 12, 0)
    st = parse_statement("T\n\nText.", default_published_at=when)
    assert st.published_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    aware = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parse_statement("T\n\nx", default_published_at=aware).published_at == when.replace(
        tzinfo=UTC
    )


# --------------------------------------------------------------------------- Markdown


FRONT = """---
title: "Down with US drones"
regions: [IRAN, USA]
tags: [Iran, "#USdrones"]
published: 2019-06-21T10:00:00+02:00
source: https://example.org/statements/drones
language: en
---

The *first* paragraph,
with a second line.

- a list item
- another #drones

#imperialistwar #Iran
"""


def test_front_matter_happy_path() -> None:
    st = parse_statement(FRONT, path="drones.md", default_published_at=datetime(2000, 1, 1))
    assert st.title == "Down with US drones"
    assert st.regions == ("Iran", "USA")
    assert st.tags == ("Iran", "USdrones", "imperialistwar", "drones")
    assert st.published_at == datetime(2019, 6, 21, 8, 0, tzinfo=UTC)
    assert st.source == "https://example.org/statements/drones"
    assert st.language == "en"
    assert st.paragraphs == (
        "The *first* paragraph,\nwith a second line.",
        "- a list item\n- another #drones",
    )
    assert st.slug == "down-with-us-drones"
    assert st.content_hash == content_hash(st)


def test_front_matter_string_forms_and_defaults() -> None:
    text = (
        "---\ntitle: Plain\nregion: SOUTH AFRICA / Côte d'Ivoire\ntags: a, b c\n"
        "published: '2024-05-01'\n---\nBody."
    )
    st = parse_statement(text, default_published_at=datetime(2000, 1, 1, tzinfo=UTC))
    assert st.regions == ("South Africa", "Côte d'Ivoire")
    assert st.tags == ("a", "b", "c")
    assert st.published_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert (st.source, st.language) == (None, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01 12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ('"2024-05-01T12:30:00+02:00"', datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_front_matter_dates(value: str, expected: datetime) -> None:
    st = parse_statement(f"---\ntitle: T\npublished: {value}\n---\nBody.")
    assert st.published_at == expected
    assert st.published_at is not None and st.published_at.tzinfo is not None


def test_front_matter_without_date_uses_default() -> None:
    default = datetime(2020, 2, 2, tzinfo=UTC)
    st = parse_statement("---\ntitle: T\n---\nBody.", default_published_at=default)
    assert st.published_at == default


def test_front_matter_scalars_are_taken_as_written() -> None:
    """YAML 1.1 would read `no` as False and `1984` as a number."""
    st = parse_statement("---\ntitle: 1984\nlanguage: no\n---\nBody.")
    assert (st.title, st.language) == ("1984", "no")
    assert parse_statement("---\ntitle: T\nlanguage: pt-BR\n---\nx").language == "pt-BR"


def test_front_matter_title_is_not_split_into_regions() -> None:
    st = parse_statement("---\ntitle: IRAN - Explicit\n---\nBody.")
    assert (st.regions, st.title) == ((), "IRAN - Explicit")


def test_front_matter_keeps_fenced_code_together() -> None:
    text = "---\ntitle: T\n---\nIntro.\n\n```\ncode\n\nmore code\n```\n\nEnd."
    st = parse_statement(text)
    assert st.paragraphs == ("Intro.", "```\ncode\n\nmore code\n```", "End.")


def test_front_matter_with_crlf_and_bom(tmp_path: Path) -> None:
    text = "\ufeff---\r\ntitle: T\r\nregions: IRAN\r\n---\r\n\r\nBody one\r\ntwo.\r\n"
    st = parse_file(write(tmp_path, "s.md", text))
    assert (st.title, st.regions, st.paragraphs) == ("T", ("Iran",), ("Body one\ntwo.",))


def test_markdown_heading_as_headline() -> None:
    st = parse_statement("# IRAN – Down with drones\n\nSome **bold** text\nkept.\n\n#Iran")
    assert st.regions == ("Iran",)
    assert st.title == "Down with drones"
    assert st.paragraphs == ("Some **bold** text\nkept.",)
    assert st.tags == ("Iran",)


def test_markdown_heading_without_region() -> None:
    st = parse_statement("## Why we fight - a reply ##\n\nText.")
    assert (st.regions, st.title) == ((), "Why we fight - a reply")


def test_md_suffix_keeps_line_breaks_of_plain_headline(tmp_path: Path) -> None:
    st = parse_file(write(tmp_path, "s.md", "IRAN - T\n\n- one\n- two\n"))
    assert st.paragraphs == ("- one\n- two",)
    st = parse_file(write(tmp_path, "s.txt", "IRAN - T\n\n- one\n- two\n"))
    assert st.paragraphs == ("- one - two",)


# --------------------------------------------------------------------------- front-matter errors


def test_front_matter_not_closed() -> None:
    e = error_of("---\ntitle: T\n\nBody.\n", path="s.md")
    assert (e.path, e.line) == ("s.md", 1)
    assert e.reason.startswith("front matter is not closed")


def test_front_matter_unknown_key() -> None:
    e = error_of("---\ntitle: T\n\nauthor: Ann\n---\nBody.", path="s.md")
    assert (e.path, e.line) == ("s.md", 4)
    assert e.reason.startswith("unknown key 'author' in front matter")
    assert "title" in e.reason


def test_front_matter_duplicate_key() -> None:
    e = error_of("---\ntitle: T\ntitle: U\n---\nBody.")
    assert e.line == 3
    assert e.reason == "key 'title' given twice (first on line 2)"


def test_front_matter_region_and_regions() -> None:
    e = error_of("---\ntitle: T\nregion: IRAN\nregions: [USA]\n---\nBody.")
    assert (e.line, e.reason) == (4, "give either 'region' or 'regions', not both")


def test_front_matter_invalid_yaml_names_file_line() -> None:
    e = error_of("---\ntitle: T\ntags: [a, b\nsource: x\n---\nBody.", path="s.md")
    assert e.path == "s.md"
    assert e.reason.startswith("front matter is not valid YAML")
    assert e.line in (4, 5)  # where YAML noticed the unclosed list


def test_front_matter_invalid_yaml_exact_line() -> None:
    e = error_of("---\ntitle: T\nlanguage: en\n  bad: indent\n---\nBody.")
    assert e.line == 4
    assert e.reason.startswith("front matter is not valid YAML:")


def test_front_matter_not_a_mapping() -> None:
    e = error_of("---\n- a\n- b\n---\nBody.")
    assert (e.line, e.reason) == (2, "front matter must be 'key: value' lines")


def test_front_matter_without_title() -> None:
    for text in ("---\nlanguage: en\n---\nBody.", "---\n---\nBody."):
        e = error_of(text, path="s.md")
        assert (e.path, e.line, e.reason) == ("s.md", 1, "front matter has no 'title'")


def test_front_matter_title_but_no_text() -> None:
    e = error_of("---\nlanguage: en\ntitle: T\n---\n\n#only #tags\n")
    assert (e.line, e.reason) == (3, "statement has a title but no text")


def test_front_matter_title_too_long() -> None:
    e = error_of(f"---\n\ntitle: {'y' * 301}\n---\nBody.")
    assert e.line == 3
    assert e.reason.startswith("title too long")


def test_front_matter_title_not_text() -> None:
    e = error_of("---\ntitle:\n  - a\n---\nBody.")
    assert (e.line, e.reason) == (3, "'title' must be a text")


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "example.org/x", "https://", "javascript:alert(1)", "http://a b"]
)
def test_front_matter_bad_source(url: str) -> None:
    e = error_of(f"---\ntitle: T\nsource: '{url}'\n---\nBody.", path="s.md")
    assert (e.path, e.line) == ("s.md", 3)
    assert e.reason == f"bad source URL '{url}': must be an http:// or https:// address"


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30", "'01.05.2024'", "2024"])
def test_front_matter_bad_date(value: str) -> None:
    e = error_of(f"---\ntitle: T\nlanguage: en\npublished: {value}\n---\nBody.", path="s.md")
    assert (e.path, e.line) == ("s.md", 4)
    assert e.reason.startswith(f"bad date '{value.strip(chr(39))}' for 'published'")


def test_front_matter_bad_language() -> None:
    e = error_of("---\ntitle: T\nlanguage: English\n---\nBody.")
    assert e.line == 3
    assert e.reason == "bad language 'English': expected a short code like 'en' or 'de'"


def test_front_matter_bad_tag_names_item_line() -> None:
    e = error_of("---\ntitle: T\ntags:\n  - ok\n  - human rights\n---\nBody.")
    assert e.line == 5
    assert e.reason.startswith("bad tag 'human rights'")


def test_front_matter_bad_regions_shape() -> None:
    e = error_of("---\ntitle: T\nregions: {a: b}\n---\nBody.")
    assert e.line == 3
    assert "'regions' must be a list" in e.reason


# --------------------------------------------------------------------------- statement_files


def test_statement_files_expands_folders(tmp_path: Path) -> None:
    write(tmp_path, "b.txt", "x")
    write(tmp_path, "a.md", "x")
    write(tmp_path, "sub/c.txt", "x")
    write(tmp_path, "sub/deeper/d.MD", "x")
    write(tmp_path, "notes.pdf", "x")
    write(tmp_path, ".hidden.txt", "x")
    write(tmp_path, ".git/e.txt", "x")
    write(tmp_path, "sub/.draft/f.txt", "x")
    (tmp_path / "folder.txt").mkdir()
    found = statement_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.md",
        "b.txt",
        "sub/c.txt",
        "sub/deeper/d.MD",
    ]


def test_statement_files_keeps_order_and_dedupes(tmp_path: Path) -> None:
    one = write(tmp_path, "z/one.txt", "x")
    other = write(tmp_path, "other.data", "x")  # named explicitly: taken as it is
    found = statement_files([str(other), tmp_path / "z", one])
    assert found == [other, one]


def test_statement_files_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(StatementError) as info:
        statement_files([tmp_path, missing])
    e = info.value
    assert (e.path, e.line, e.reason) == (str(missing), None, "no such file or folder")
    assert str(e) == f"{missing}: no such file or folder"


def test_statement_files_empty_input() -> None:
    assert statement_files([]) == []


# --------------------------------------------------------------------------- slugify and hash


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        (
            "Down with US drones, down with US imperialism!",
            "down-with-us-drones-down-with-us-imperialism",
        ),
        ("Ça va? Für Curaçao – São Paulo!", "ca-va-fur-curacao-sao-paulo"),
        ("Die Straße, Œuvre, Łódź", "die-strasse-oeuvre-lodz"),
        ("Don't stop", "dont-stop"),
        ("  --Hello__World--  ", "hello-world"),
        ("ﬁne ２０２４", "fine-2024"),
        ("Ελλάδα", ""),
        ("", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_is_cut_at_a_word() -> None:
    slug = slugify("solidarity " * 20)
    assert len(slug) <= 80
    assert slug.endswith("solidarity")
    assert not slug.startswith("-") and "--" not in slug
    assert len(slugify("x" * 200)) == 80


def test_slug_falls_back_to_hash_when_title_has_no_latin_letters() -> None:
    st = parse_statement("Αλληλεγγύη\n\nΚείμενο.")
    assert st.slug == f"statement-{st.content_hash[:12]}"


def test_content_hash_changes_with_content() -> None:
    base = parse_statement("IRAN - T\n\nText.")
    assert content_hash(base) == base.content_hash  # no explicit date: same either way
    changed = [
        replace(base, title="U"),
        replace(base, paragraphs=("Text!",)),
        replace(base, regions=("Iraq",)),
        replace(base, tags=("x",)),
        replace(base, source="https://example.org"),
        replace(base, language="de"),
        replace(base, published_at=datetime(2024, 1, 1, tzinfo=UTC)),
    ]
    hashes = {content_hash(s) for s in changed}
    assert base.content_hash not in hashes
    assert len(hashes) == len(changed)


def test_content_hash_normalises() -> None:
    a = Statement(title="Café  now", paragraphs=("a\nb",), regions=("Iran",), tags=("X", "y"))
    b = Statement(
        title="Cafe\u0301 now",
        paragraphs=(" a b ",),
        regions=("IRAN",),
        tags=("Y", "x"),
        id=7,
        slug="other",
    )
    assert content_hash(a) == content_hash(b)
    naive = replace(a, published_at=datetime(2024, 1, 1, 2, 0))
    aware = replace(a, published_at=datetime(2024, 1, 1, 4, 0, tzinfo=timezone(timedelta(hours=2))))
    assert content_hash(naive) == content_hash(aware)
    assert content_hash(naive, include_published_at=False) == content_hash(a)
