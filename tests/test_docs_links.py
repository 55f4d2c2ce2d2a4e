"""The documentation's relative links resolve: README.md and docs/**/*.md, every `](target)` that is not a URL.

A link must point at a file inside the repository (a link out of it would dangle in a clone), and a `#fragment`
must name a heading of the target page, as GitHub turns headings into anchors. Links rot when pages move or
headings are renamed; this catches it at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
README_MAX_BYTES = 10_000  # the README stays a short entry point; the rest lives in docs/

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def _prose(text: str) -> str:
    """The page without code: links and headings inside code blocks or inline code are not links or headings."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation out, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """Every link on ``page`` (its file, or ``text`` as if it were there) that does not resolve, with why."""
    problems = []
    if text is None:
        text = page.read_text(encoding="utf-8")
    for target in _LINK.findall(_prose(text)):
        if _EXTERNAL.match(target):
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(ROOT)}: ({target})"
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: {path} does not exist")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_catches_what_it_should() -> None:
    assert slug("Scheduled messages (`schedule`)") == "scheduled-messages-schedule"
    assert slug("First session in the console") == "first-session-in-the-console"
    probe = ROOT / "docs" / "probe.md"  # a page that is not there: its text is given
    good = "[a](../README.md#first-session-in-the-console) [b](operators/lottery.md) [c](https://x.y/z) `[d](no.md)`"
    assert broken_links(probe, good) == []
    bad = "[a](missing.md) [b](../README.md#no-such-heading) [c](../../shared/docs/replay.md)"
    found = broken_links(probe, bad)
    assert [f.split(": ", 2)[-1] for f in found] == [
        "missing.md does not exist", "no heading #no-such-heading in README.md", "points outside the repository"]


def test_readme_stays_short() -> None:
    assert (ROOT / "README.md").stat().st_size <= README_MAX_BYTES
