"""Store benchmark: import N realistic statements, then time the reads users make.

    .venv/bin/python benchmarks/store.py --count 10000        # seconds (`make bench`)
    .venv/bin/python benchmarks/store.py --count 1000000      # minutes, a few GB of disk

Statements are generated deterministically (same seed → same archive): 200 regions
(real country names from pycountry and free regions), 2,000 hashtags, Zipf-like use of
both, ~3 KB bodies from a vocabulary with Zipf word frequencies, increasing publication
times. They go in through `StatementStore.add_many`, the path every import takes, and
are read back through the store API: the first page (6 rows, what a handler asks for a
page of 5) of latest / by tag / by region / search, for popular and rare keys alike.

Prints figures; asserts nothing (timings depend on the machine). Issue targets: import
>= 5,000 statements/s, p99 < 5 ms, search p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import hashlib
import itertools
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pycountry

from bot.model import Statement
from bot.regions import region_key
from bot.statements import slugify
from bot.store import IMPORT_BATCH, Store, tag_key

PAGE = 6  # a handler fetches page_size + 1 to know whether there is a next page
START = datetime(2005, 1, 1, tzinfo=UTC)

_SYLLABLE_TEXT = (
    "ka ri to mu sa le vi no da pe lo ra mi ne ta su ko ha be zi fa go ju ly "
    "an er in or un al el il ol ar st tr pr gr dr ch sh th ph wh"
)
_WORD_TEXT = (
    "the of and to in a is that for on with as by it from at are was this be an "
    "people war workers struggle imperialism drone drones sanctions government "
    "strike solidarity revolution liberation resistance occupation protest union "
    "freedom police army election rulers oppression capital crisis reform "
    "peace bombing refugees border ceasefire embargo uprising"
)
SYLLABLES = _SYLLABLE_TEXT.split()
REAL_WORDS = _WORD_TEXT.split()
FREE_REGIONS = (
    "Kurdistan",
    "Latin America",
    "Middle East",
    "Western Sahara",
    "Balkans",
    "Kashmir",
    "Catalonia",
    "Basque Country",
    "Donbas",
    "Sahel",
    "Tamil Eelam",
    "Rojava",
    "Scandinavia",
    "Caribbean",
    "Horn of Africa",
    "Southeast Asia",
    "Central Asia",
    "West Bank",
    "Gaza",
    "Punjab",
)


def zipf_weights(n: int, s: float = 1.05) -> list[float]:
    """Cumulative weights of a Zipf-like law over ranks 1..n (for random.choices)."""
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


def pick(rng: random.Random, items: Sequence[str], cum: Sequence[float]) -> str:
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def pick_distinct(
    rng: random.Random, items: Sequence[str], cum: Sequence[float], k: int
) -> list[str]:
    out: list[str] = []
    while len(out) < k:
        item = pick(rng, items, cum)
        if item not in out:
            out.append(item)
    return out


def invented_word(rng: random.Random, low: int = 2, high: int = 4) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(low, high)))


@dataclass(slots=True)
class Corpus:
    """Everything the generator draws from; built once from the seed."""

    words: list[str]
    word_cum: list[float]
    tags: list[str]
    tag_cum: list[float]
    regions: list[str]
    region_cum: list[float]
    sentences: list[str]

    @classmethod
    def build(cls, rng: random.Random, vocabulary: int = 4000) -> Corpus:
        words = list(REAL_WORDS)
        seen = set(words)
        while len(words) < vocabulary:
            word = invented_word(rng)
            if word not in seen:
                seen.add(word)
                words.append(word)
        word_cum = zipf_weights(len(words))

        tags: list[str] = []
        tag_seen: set[str] = set()
        while len(tags) < 2000:
            tag = "".join(invented_word(rng, 1, 2).capitalize() for _ in range(rng.randint(1, 2)))
            if tag.casefold() not in tag_seen:
                tag_seen.add(tag.casefold())
                tags.append(tag)
        rng.shuffle(tags)

        countries = sorted(c.name for c in pycountry.countries)
        regions = rng.sample(countries, 180) + list(FREE_REGIONS)
        rng.shuffle(regions)

        # A pool of sentences keeps generation cheap; paragraphs combine them at random.
        sentences = []
        for _ in range(30000):
            n = rng.randint(8, 22)
            body = " ".join(pick(rng, words, word_cum) for _ in range(n))
            sentences.append(body[:1].upper() + body[1:] + rng.choice("...!?"))
        return cls(
            words, word_cum, tags, zipf_weights(len(tags)), regions, zipf_weights(200), sentences
        )


def statements(corpus: Corpus, rng: random.Random, count: int) -> Iterator[Statement]:
    """`count` statements, each ~3 KB, published a few minutes to hours apart."""
    moment = START
    for n in range(1, count + 1):
        moment += timedelta(seconds=rng.randint(60, 600))
        regions = tuple(pick_distinct(rng, corpus.regions, corpus.region_cum, rng.randint(1, 2)))
        tags = tuple(pick_distinct(rng, corpus.tags, corpus.tag_cum, rng.randint(1, 4)))
        title_words = [pick(rng, corpus.words, corpus.word_cum) for _ in range(rng.randint(4, 9))]
        title = " ".join(title_words).capitalize() + f" ({n})"
        paragraphs: list[str] = []
        size = 0
        target = rng.randint(2500, 3500)
        while size < target:
            paragraph = " ".join(rng.choices(corpus.sentences, k=rng.randint(2, 6)))
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        st = Statement(
            title=title,
            paragraphs=tuple(paragraphs),
            regions=regions,
            tags=tags,
            published_at=moment,
            slug=slugify(title),
        )
        # The parser's content_hash normalises every paragraph (~0.3 ms for 3 KB); any
        # stable digest of the content serves the store the same way, and is cheaper.
        digest = hashlib.sha256(f"{title}\n{st.body}\n{tags}\n{regions}".encode()).hexdigest()
        yield replace(st, content_hash=digest)


def batched(items: Iterator[Statement], size: int) -> Iterator[list[Statement]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def db_size(path: Path) -> int:
    return sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / 1024


async def timed(calls: Sequence[Callable[[], Awaitable[object]]]) -> tuple[list[float], int]:
    """Latencies in ms of each call, and how many returned a non-empty list."""
    out: list[float] = []
    hits = 0
    for call in calls:
        began = time.perf_counter()
        result = await call()
        out.append((time.perf_counter() - began) * 1000)
        hits += bool(result)
    return out, hits


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    began = time.perf_counter()
    corpus = Corpus.build(rng)
    print(f"corpus built in {time.perf_counter() - began:.1f} s", flush=True)

    path = Path(args.db)
    if not args.reads_only:
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
    store = await Store.open(path)
    if args.count > IMPORT_BATCH:
        await store.db.use_bulk_cache()  # as `statement-bot import` does for an archive
    for pragma in args.pragma:
        await store.db.conn.execute(f"PRAGMA {pragma}")
    try:
        generating = importing = 0.0
        done = 0
        source = statements(corpus, rng, 0 if args.reads_only else args.count)
        report_every = max(args.batch, args.count // 10)
        next_report = report_every
        while True:
            t0 = time.perf_counter()
            batch = list(itertools.islice(source, args.batch))
            t1 = time.perf_counter()
            generating += t1 - t0
            if not batch:
                break
            await store.statements.add_many(
                [(st, f"bench:{i + done}") for i, st in enumerate(batch)]
            )
            importing += time.perf_counter() - t1
            done += len(batch)
            if done >= next_report:
                print(
                    f"  {done:>9,} imported, {done / importing:,.0f}/s so far, "
                    f"{db_size(path) / 1e6:,.0f} MB",
                    flush=True,
                )
                next_report += report_every
        rate = done / importing if importing else 0.0
        settle = 0.0
        if args.reads_only:
            done = await store.statements.count()
        else:
            # Checkpoints run beside the import (bot/store/db.py); closing copies what is
            # left of the write-ahead log, so the reads below see a settled database.
            t0 = time.perf_counter()
            await store.close()
            store = await Store.open(path)
            settle = time.perf_counter() - t0

        size_mb = db_size(path) / 1e6
        query_rng = random.Random(args.seed + 1)
        popular_tags = [tag_key(t) for t in corpus.tags[:20]]
        rare_tags = [tag_key(t) for t in corpus.tags[-500:]]
        popular_regions = [region_key(r) for r in corpus.regions[:10]]
        rare_regions = [region_key(r) for r in corpus.regions[-100:]]
        popular_words = corpus.words[:50]
        rare_words = corpus.words[-2000:]
        s = store.statements

        def keys(popular: list[str], rare: list[str]) -> list[str]:
            return [query_rng.choice(popular if i % 2 else rare) for i in range(args.queries)]

        def search_terms() -> list[str]:
            out = []
            for i in range(args.queries):
                kind = i % 4
                if kind == 0:
                    out.append(query_rng.choice(popular_words))
                elif kind == 1:
                    out.append(query_rng.choice(rare_words))
                elif kind == 2:
                    out.append(f"{query_rng.choice(popular_words)} {query_rng.choice(rare_words)}")
                else:
                    out.append(query_rng.choice(rare_words)[:4] + "*")
            return out

        def bind(
            fn: Callable[[str, int], Awaitable[list[Statement]]], key: str
        ) -> Callable[[], Awaitable[list[Statement]]]:
            return lambda: fn(key, PAGE)

        suites: dict[str, list[Callable[[], Awaitable[object]]]] = {
            "latest": [lambda: s.latest(PAGE)] * args.queries,
            "by_tag": [bind(s.by_tag, k) for k in keys(popular_tags, rare_tags)],
            "by_region": [bind(s.by_region, k) for k in keys(popular_regions, rare_regions)],
            "search": [bind(s.search, w) for w in search_terms()],
        }
        gc.collect()
        gc.freeze()  # the generator's objects are not a bot's: keep collector pauses out
        results = {}
        for name, calls in suites.items():
            await timed(calls[:10])  # warm the page cache a little, as a running bot would
            results[name] = await timed(calls)
        tags_began = time.perf_counter()
        await s.tags(limit=200)
        tags_ms = (time.perf_counter() - tags_began) * 1000
    finally:
        await store.close()

    print()
    print(f"statements        {done:>12,}")
    if not args.reads_only:
        print(f"generation        {generating:>12.1f} s (not counted in the import rate)")
        print(
            f"import            {importing:>12.1f} s   {rate:>10,.0f} statements/s"
            "  (target >= 5,000)"
        )
        print(f"final checkpoint  {settle:>12.1f} s (after the import: closing the database)")
    print(f"database size     {size_mb:>12,.1f} MB (with -wal and -shm)")
    print()
    print(f"{'query (6 rows)':<16}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'hits':>8}  target")
    for name, (latencies, hits) in results.items():
        target = "p99 < 20 ms" if name == "search" else "p99 < 5 ms"
        print(
            f"{name:<16}{statistics.median(latencies):>10.2f}{percentile(latencies, 99):>10.2f}"
            f"{max(latencies):>10.2f}{hits:>5}/{len(latencies):<4} {target}"
        )
    print(f"{'tags (counts)':<16}{tags_ms:>10.2f}{'':>10}{'':>10}{'':>8}  (one call, /tags)")
    print()
    print(f"peak RSS          {peak_rss_mb():>12,.0f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="statements to import")
    parser.add_argument("--db", help="database file (default: a temporary file, removed after)")
    parser.add_argument(
        "--batch", type=int, default=IMPORT_BATCH, help="statements per add_many call"
    )
    parser.add_argument("--queries", type=int, default=200, help="timed calls per query kind")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="skip the import: time the reads of an existing --db made with the same --seed",
    )
    parser.add_argument(
        "--pragma",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra PRAGMA after opening, to try a setting (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.reads_only and not (args.db and Path(args.db).exists()):
        parser.error("--reads-only needs an existing --db")
    if args.db:
        asyncio.run(run(args))
        return 0
    with tempfile.TemporaryDirectory(prefix="statement-bot-bench-") as folder:
        args.db = os.path.join(folder, "bench.db")
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
