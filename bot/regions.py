"""One key per region, so `IRAN`, `Iran`, `IR` and `IRN` all mean the same place.

Countries resolve through pycountry (names, official and common names, ISO alpha-2
and alpha-3 codes) to `cc:<alpha-2>`; anything else ("Kurdistan", "Latin America")
is a free region keyed by its case-folded text.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import pycountry

# Everyday names that ISO does not carry; everything else comes from pycountry.
_ALIASES = {
    "uk": "GB",
    "britain": "GB",
    "great britain": "GB",
    "turkey": "TR",
    "drc": "CD",
    "dr congo": "CD",
    "north korea": "KP",
    "ivory coast": "CI",
}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", text.replace(".", "")).strip()


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@functools.cache
def _country_names() -> tuple[tuple[str, str], ...]:
    """(folded name, alpha-2) for every name variant pycountry knows."""
    names: list[tuple[str, str]] = []
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                names.append((_fold(value), country.alpha_2))
                names.append((_fold(_ascii(value)), country.alpha_2))
    return tuple(names)


@functools.lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """The ISO alpha-2 code for a country name or code, or None for a free region."""
    folded = _fold(name)
    if not folded:
        return None
    if folded in _ALIASES:
        return _ALIASES[folded]
    try:
        return str(pycountry.countries.lookup(folded).alpha_2)
    except LookupError:
        pass
    exact = {code for n, code in _country_names() if n == folded}
    if len(exact) == 1:
        return exact.pop()
    if len(folded) >= 4:
        # "Russia" → "Russian Federation", "Palestine" → "Palestine, State of"
        prefixed = {code for n, code in _country_names() if n.startswith(folded)}
        if len(prefixed) == 1:
            return prefixed.pop()
    return None


@functools.lru_cache(maxsize=4096)  # called for every region of every imported statement
def region_key(name: str) -> str:
    """The matching key of a region: `cc:ir` for Iran, `kurdistan` for Kurdistan."""
    code = country_code(name)
    if code:
        return f"cc:{code.lower()}"
    return _fold(name)


def country_name(key: str) -> str | None:
    """The common English name for a `cc:` key, for showing a region nobody wrote yet."""
    if not key.startswith("cc:"):
        return None
    country = pycountry.countries.get(alpha_2=key[3:].upper())
    if country is None:
        return None
    return str(getattr(country, "common_name", None) or country.name)
