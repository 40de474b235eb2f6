"""Statement files → `bot.model.Statement`, with errors that name the file and line.

Two formats are read (see DESIGN.md, "Statement"):

* plain text, the organisation's own format: a headline `REGION - Title`, paragraphs
  separated by blank lines, and a closing line of hashtags;
* Markdown, either with YAML front matter (`---` … `---`) or with a `# Heading` first line.

Admins fix files by hand, so every rejection is a `StatementError` whose text is
`path:line: reason`, the form editors and terminals can jump to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.model import Statement

log = logging.getLogger(__name__)

MAX_TITLE_LENGTH = 300
MAX_SLUG_LENGTH = 80
MAX_REGION_WORDS = 5
STATEMENT_SUFFIXES = frozenset({".txt", ".md"})
FRONT_MATTER_KEYS = ("language", "published", "region", "regions", "source", "tags", "title")


class StatementError(ValueError):
    """A statement that cannot be published, and where to look to fix it.

    `line` is 1-based. `str(e)` is `path:line: reason` without the parts that are None.
    """

    def __init__(self, path: str | None, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [str(p) for p in (self.path, self.line) if p is not None]
        return ": ".join([":".join(parts), self.reason]) if parts else self.reason

    def __str__(self) -> str:
        return self._format()

    def __reduce__(self) -> tuple[Any, ...]:
        # ValueError pickles through .args; keep the three fields across processes.
        return (type(self), (self.path, self.line, self.reason))


# --------------------------------------------------------------------------- text helpers

# Unicode spaces an editor or a copy from a web page leaves in a headline.
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]+")
_SEPARATOR = re.compile(r" [-\u2013\u2014] ")
# `#` + word characters with at least one letter; not after a word char (`page#x`),
# `&` (`&#39;`), `/` (`/#anchor`) or another `#` (`##`).
_HASHTAG = re.compile(r"(?<![\w&/#])#(\w*[^\W\d_]\w*)")
# A token of a hashtag-only line; allows the odd closing `#` (`#imperialistwar#`) and a comma.
_TAG_TOKEN = re.compile(r"#(\w*[^\W\d_]\w*)#*[,;]?")
_VALID_TAG = re.compile(r"\w*[^\W\d_]\w*")
_ATX_HEADING = re.compile(r"#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")
_REGION_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|[.'’])*(?:-[^\W\d_](?:[^\W\d_]|[.'’])*)*")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
# Short words of place names that are words, not abbreviations like USA or DRC.
_LOWER_INSIDE = frozenset(
    {"of", "and", "the", "de", "del", "des", "di", "da", "do", "dos", "du", "la", "le", "et", "y"}
)
_SHORT_WORDS = _LOWER_INSIDE | {"new", "sri", "el", "las", "los", "san", "st", "ste", "abu", "al"}
# Letters NFKD does not decompose into ASCII.
_TRANSLIT = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
    }
)


def _squash(text: str) -> str:
    """One ASCII space for any run of whitespace (tabs, nbsp…), trimmed."""
    return _SPACES.sub(" ", text).strip()


def _line_of_offset(data: bytes, offset: int) -> int:
    """1-based line of a byte offset, counting CRLF, CR and LF as one break each."""
    head = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return head.count(b"\n") + 1


def slugify(text: str) -> str:
    """ASCII, lower-case, hyphenated; stable across runs so links to a statement keep working.

    Accented letters are transliterated (`Curaçao` → `curacao`). Text with no Latin
    letters at all gives "" (the parser then falls back to a hash-based slug).
    """
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"['’`]", "", text)  # don't -> dont, not don-t
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(text) > MAX_SLUG_LENGTH:
        cut = text[: MAX_SLUG_LENGTH + 1]
        # Cut at a word boundary when a word would be split, unless that loses too much.
        if cut[-1] != "-" and cut.rfind("-") >= MAX_SLUG_LENGTH // 2:
            cut = cut[: cut.rfind("-")]
        text = cut[:MAX_SLUG_LENGTH].strip("-")
    return text


def _norm(text: str) -> str:
    return _squash(unicodedata.normalize("NFC", text))


def content_hash(st: Statement, *, include_published_at: bool = True) -> str:
    """SHA-256 hex of the normalised content: same content → same hash → no duplicate.

    Whitespace runs and Unicode composition are normalised; tags and regions compare
    case-insensitively and regardless of order, as they match everywhere else.
    `parse_statement` passes `include_published_at=False` when the time is only a
    fallback (a file's mtime), so a `git checkout` does not turn old files into new ones.
    """
    published = None
    if include_published_at and st.published_at is not None:
        published = _as_utc(st.published_at).isoformat()
    payload = {
        "title": _norm(st.title),
        "paragraphs": [_norm(p) for p in st.paragraphs],
        "regions": sorted({_norm(r).casefold() for r in st.regions}),
        "tags": sorted({_norm(t).casefold() for t in st.tags}),
        "source": st.source.strip() if st.source else None,
        "language": st.language.lower() if st.language else None,
        "published_at": published,
    }
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _as_utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC (that is what the files and the store mean)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- regions


def _looks_like_region(part: str) -> bool:
    """`IRAN`, `SOUTH AFRICA`, `U.S.`: upper-case words, at most a few of them."""
    words = part.split(" ")
    if not 1 <= len(words) <= MAX_REGION_WORDS:
        return False
    letters = 0
    for word in words:
        if not _REGION_WORD.fullmatch(word):
            return False
        if any(c.isalpha() and not c.isupper() for c in word):
            return False
        letters += sum(c.isalpha() for c in word)
    return letters >= 2


def _split_regions(prefix: str) -> list[str] | None:
    """The regions of a headline prefix, or None when the prefix is not regions."""
    parts = [p.strip() for p in re.split(r"[/,]", prefix)]
    if not all(parts) or not all(_looks_like_region(p) for p in parts):
        return None
    return parts


def _display_word(word: str, first: bool) -> str:
    """`IRAN` → `Iran`; `USA`, `UK`, `U.S.` stay; `OF` → `of`; mixed case stays as written."""
    if any(c.isalpha() and not c.isupper() for c in word):
        return word
    if not first and re.sub(r"\W", "", word).lower() in _LOWER_INSIDE:
        return word.lower()
    return "-".join(_display_segment(seg) for seg in word.split("-"))


def _display_segment(seg: str) -> str:
    """One hyphen-free part of an upper-case word: abbreviations stay, words are title-cased."""
    bare = re.sub(r"\W", "", seg).lower()
    if len(bare) <= 3 and bare not in _SHORT_WORDS:
        return seg
    seg = seg[:1].upper() + seg[1:].lower()
    # O'HIGGINS → O'Higgins, D'IVOIRE → D'Ivoire
    return re.sub(r"^(\w['’])(\w)", lambda m: m.group(1) + m.group(2).upper(), seg)


def display_region(region: str) -> str:
    """The form regions are stored and shown in: `SOUTH AFRICA` → `South Africa`."""
    words = _squash(region).split(" ")
    return " ".join(_display_word(w, i == 0) for i, w in enumerate(words) if w)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    """Case-insensitive de-duplication; the first spelling and first position win."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)


# --------------------------------------------------------------------------- paragraphs


@dataclass(frozen=True, slots=True)
class _Block:
    """A paragraph and the file line it starts on (for error messages)."""

    line: int
    text: str


def _blocks(lines: list[str], first_line: int, *, markdown: bool) -> list[_Block]:
    """Split on blank lines. Plain text joins a paragraph's lines with one space;
    Markdown keeps them as written and never splits inside a fenced code block."""
    blocks: list[_Block] = []
    current: list[str] = []
    start = first_line
    fence: str | None = None

    def flush() -> None:
        if not current:
            return
        # Markdown line breaks carry meaning (lists, quotes); plain text wraps freely.
        text = "\n".join(current).rstrip() if markdown else " ".join(x.strip() for x in current)
        blocks.append(_Block(start, text))
        current.clear()

    for offset, line in enumerate(lines):
        if markdown and (m := _FENCE.match(line)):
            marker = m.group(1)
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
        if not line.strip() and fence is None:
            flush()
            continue
        if not current:
            start = first_line + offset
        current.append(line)
    flush()
    return blocks


def _tag_line(text: str) -> list[str] | None:
    """The tags of a paragraph made only of hashtags, else None."""
    tokens = text.split()
    tags: list[str] = []
    for token in tokens:
        m = _TAG_TOKEN.fullmatch(token)
        if not m:
            return None
        tags.append(m.group(1))
    return tags or None


def _hashtags(text: str) -> list[str]:
    return _HASHTAG.findall(text)


# --------------------------------------------------------------------------- front matter


_ErrorAt = Callable[[int, str], StatementError]  # (0-based YAML line, reason) -> error


@dataclass(slots=True)
class _FrontMatter:
    title: str | None = None
    title_line: int = 1
    regions: list[str] | None = None
    tags: list[str] | None = None
    published_at: datetime | None = None
    source: str | None = None
    language: str | None = None


def _scalar_text(node: yaml.Node) -> str | None:
    """The text as written for scalars: keeps `no`, `1984`, `2024-01-01` as strings."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return None
        return str(node.value)
    return None


def _string_list(
    node: yaml.Node, what: str, err: _ErrorAt, *, separators: str
) -> list[tuple[str, int]]:
    """A list of strings or one string split on `separators`, each with its line."""
    line = node.start_mark.line
    if isinstance(node, yaml.SequenceNode):
        items: list[tuple[str, int]] = []
        for child in node.value:
            text = _scalar_text(child)
            if text is None:
                raise err(child.start_mark.line, f"each of '{what}' must be a text")
            items.append((text, child.start_mark.line))
        return items
    text = _scalar_text(node)
    if text is None:
        if isinstance(node, yaml.ScalarNode):
            return []
        raise err(line, f"'{what}' must be a list or a text like 'a, b'")
    return [(p, line) for p in re.split(f"[{re.escape(separators)}]", text)]


def _parse_date(value: object, raw: str) -> datetime | None:
    """YAML's date/datetime, or an ISO 8601 text (quoted dates); naive means UTC."""
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        return _as_utc(datetime.fromisoformat(raw.strip()))
    except ValueError:
        return None


def _read_front_matter(lines: list[str], close: int, path: str | None) -> _FrontMatter:
    """Lines 2..close-1 as YAML, every problem reported at the file line it comes from."""
    base = 2  # file line of the first YAML line (YAML marks are 0-based)

    def err(yaml_line: int, reason: str) -> StatementError:
        return StatementError(path, base + yaml_line, reason)

    text = "\n".join(lines[1:close])
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            reason = f"front matter is not valid YAML: {e.problem or e.context or 'syntax error'}"
            if mark is None:
                raise StatementError(path, 1, reason) from e
            raise err(mark.line, reason) from e
        except yaml.YAMLError as e:
            raise StatementError(path, 1, f"front matter is not valid YAML: {e}") from e

        fm = _FrontMatter()
        if root is None:
            return fm
        if not isinstance(root, yaml.MappingNode):
            raise err(root.start_mark.line, "front matter must be 'key: value' lines")

        seen: dict[str, int] = {}
        for key_node, value_node in root.value:
            key_line = key_node.start_mark.line
            key = _scalar_text(key_node)
            if key not in FRONT_MATTER_KEYS:
                shown = f" '{key}'" if key is not None else ""
                raise err(
                    key_line,
                    f"unknown key{shown} in front matter (known: {', '.join(FRONT_MATTER_KEYS)})",
                )
            if key in seen:
                raise err(key_line, f"key '{key}' given twice (first on line {base + seen[key]})")
            if {key, *seen} >= {"region", "regions"}:
                raise err(key_line, "give either 'region' or 'regions', not both")
            seen[key] = key_line
            _read_key(fm, key, key_node, value_node, loader, err, base)
        return fm
    finally:
        loader.dispose()


def _read_key(
    fm: _FrontMatter,
    key: str,
    key_node: yaml.Node,
    node: yaml.Node,
    loader: yaml.SafeLoader,
    err: _ErrorAt,
    base: int,
) -> None:
    """Check and store one front-matter value."""
    line = node.start_mark.line
    raw = _scalar_text(node)
    is_scalar = isinstance(node, yaml.ScalarNode)
    if key == "title":
        if not is_scalar:
            raise err(line, "'title' must be a text")
        fm.title = _squash(raw or "")
        fm.title_line = base + key_node.start_mark.line
    elif key in ("region", "regions"):
        items = _string_list(node, key, err, separators=",/")
        fm.regions = [display_region(text) for text, _ in items if text.strip()]
    elif key == "tags":
        tags = []
        for text, item_line in _string_list(node, key, err, separators=", "):
            tag = text.strip().lstrip("#")
            if not tag:
                continue
            if not _VALID_TAG.fullmatch(tag):
                raise err(
                    item_line,
                    f"bad tag '{text.strip()}': use letters, digits and _ only (like #USdrones)",
                )
            tags.append(tag)
        fm.tags = tags
    elif key == "published":
        if not is_scalar:
            raise err(line, "'published' must be a date like 2024-05-01 or 2024-05-01T12:00:00Z")
        if raw is None:
            return
        try:
            value: object = loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            value = None  # YAML saw a timestamp that is no real date: 2024-02-30
        parsed = _parse_date(value, raw) if value is not None else None
        if parsed is None:
            raise err(
                line,
                f"bad date '{raw}' for 'published':"
                " expected ISO 8601 like 2024-05-01 or 2024-05-01T12:00:00+02:00",
            )
        fm.published_at = parsed
    elif key == "source":
        if raw is None and is_scalar:
            return
        url = (raw or "").strip()
        parts = urlsplit(url) if url else None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() for c in url)
        ):
            raise err(line, f"bad source URL '{url}': must be an http:// or https:// address")
        fm.source = url
    elif key == "language":
        if raw is None and is_scalar:
            return
        code = (raw or "").strip()
        language = language_code(code)
        if language is None:
            raise err(line, f"bad language '{code}': expected a short code like 'en' or 'de'")
        fm.language = language


def language_code(text: str) -> str | None:
    """A language tag as stored (`EN-GB` → `en-GB`), or None if it does not look like one."""
    if not _LANGUAGE.fullmatch(text):
        return None
    primary, _, rest = text.partition("-")
    return primary.lower() + (f"-{rest}" if rest else "")


# --------------------------------------------------------------------------- parsing


def _headline(text: str) -> tuple[tuple[str, ...], str]:
    """`IRAN - Title` → (("Iran",), "Title"); a prefix that is no region stays in the title."""
    text = _squash(text)
    m = _SEPARATOR.search(text)
    if m:
        regions = _split_regions(text[: m.start()])
        title = text[m.end() :].strip()
        if regions is not None and title:
            return _dedupe(display_region(r) for r in regions), title
    return (), text


def _check_title(title: str, line: int, path: str | None) -> None:
    if not title:
        raise StatementError(path, line, "headline missing: the statement needs a title")
    if len(title) > MAX_TITLE_LENGTH:
        raise StatementError(
            path,
            line,
            f"title too long: {len(title)} characters, at most {MAX_TITLE_LENGTH}"
            " (is the first line really a headline?)",
        )


def _split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: CRLF, CR and LF each end one line."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _is_markdown_path(path: str | None) -> bool:
    return path is not None and Path(path).suffix.lower() in (".md", ".markdown")


def parse_statement(
    text: str,
    *,
    path: str | None = None,
    default_published_at: datetime | None = None,
) -> Statement:
    """Parse one statement; `path` only labels errors (and marks `.md` text as Markdown).

    `default_published_at` is used when the text has no `published` date of its own; it
    is not part of the content hash, so the same words re-imported later stay the same.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    for number, line in enumerate(lines, 1):
        if "\x00" in line:
            raise StatementError(path, number, "binary file (contains NUL bytes), not a statement")
    if not text.strip():
        raise StatementError(path, 1, "empty file")

    fm: _FrontMatter | None = None
    markdown = _is_markdown_path(path)
    if lines[0].rstrip() == "---":
        close = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
        if close is None:
            raise StatementError(
                path, 1, "front matter is not closed: no '---' line after the one on line 1"
            )
        fm = _read_front_matter(lines, close, path)
        if fm.title is None:
            raise StatementError(path, 1, "front matter has no 'title'")
        title, title_line = fm.title, fm.title_line
        regions: tuple[str, ...] = _dedupe(fm.regions or ())
        body_start = close + 1
        markdown = True
    else:
        index = next(i for i, line in enumerate(lines) if line.strip())
        title_line = index + 1
        first = lines[index]
        if _tag_line(first) is not None:
            raise StatementError(
                path, title_line, "headline missing: the first line holds only hashtags"
            )
        heading = _ATX_HEADING.fullmatch(first.strip())
        if heading:
            markdown = True
            first = heading.group(1)
        regions, title = _headline(first)
        body_start = index + 1
    _check_title(title, title_line, path)

    blocks = _blocks(lines[body_start:], body_start + 1, markdown=markdown)
    line_tags: list[str] = []
    if blocks and (found := _tag_line(blocks[-1].text)) is not None:
        line_tags = found
        blocks.pop()
    if not blocks:
        raise StatementError(path, title_line, "statement has a title but no text")

    body_tags = [t for b in blocks for t in _hashtags(b.text)]
    tags = _dedupe([*(fm.tags or [] if fm else []), *line_tags, *_hashtags(title), *body_tags])

    explicit = fm.published_at if fm else None
    if explicit is not None:
        published_at: datetime | None = explicit
    elif default_published_at is not None:
        published_at = _as_utc(default_published_at)
    else:
        published_at = None

    st = Statement(
        title=title,
        paragraphs=tuple(b.text for b in blocks),
        regions=regions,
        tags=tags,
        published_at=published_at,
        source=fm.source if fm else None,
        language=fm.language if fm else None,
    )
    digest = content_hash(st, include_published_at=explicit is not None)
    slug = slugify(title) or f"statement-{digest[:12]}"
    return replace(st, slug=slug, content_hash=digest)


def decode_statement(data: bytes, *, path: str | None = None) -> str:
    """UTF-8 (a BOM is fine) → text; anything else is rejected with the line of the bad byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StatementError(path, 1, "file is UTF-16; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise StatementError(
            path, _line_of_offset(data, nul), "binary file (contains NUL bytes), not a statement"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = data[e.start]
        raise StatementError(
            path,
            _line_of_offset(data, e.start),
            f"not UTF-8: byte 0x{bad:02X} at offset {e.start} cannot be decoded"
            " (save the file as UTF-8)",
        ) from e


def parse_file(path: str | Path) -> Statement:
    """Read and parse one file; its mtime stands in for a missing publication time."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
        mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except FileNotFoundError as e:
        raise StatementError(name, None, "no such file or folder") from e
    except IsADirectoryError as e:
        raise StatementError(name, None, "is a folder, not a statement file") from e
    except OSError as e:
        raise StatementError(name, None, f"cannot read: {e.strerror or e}") from e
    text = decode_statement(data, path=name)
    return parse_statement(text, path=name, default_published_at=mtime)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path) -> Iterator[Path]:
    """Statement files below `root`, sorted, skipping hidden files and folders (.git)."""
    found: list[tuple[tuple[str, ...], Path]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in files:
            if _hidden(name) or Path(name).suffix.lower() not in STATEMENT_SUFFIXES:
                continue
            full = Path(folder, name)
            found.append((full.relative_to(root).parts, full))
    for _, full in sorted(found):
        yield full


def statement_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus *.txt / *.md found in folders named; each file once, in order.

    A file named explicitly is taken whatever its name; folders are searched recursively.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            candidates: Iterable[Path] = _walk(p)
        elif p.exists():
            candidates = [p]
        else:
            raise StatementError(str(raw), None, "no such file or folder")
        for candidate in candidates:
            key = candidate.resolve()
            if key in seen:
                log.debug("skipping %s: already listed", candidate)
                continue
            seen.add(key)
            out.append(candidate)
    return out
