"""WCAG AA contrast (4.5:1) of every code colour on the code background, light and dark.

Reads the stylesheets as served: static/css/pygments.css (lesson code, Pygments) and the
editor's --cm-* variables in static/css/grader.css, against --code-bg of static/css/site.css.
The browser tests' axe-core check covers the rendered pages on top of this.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static" / "css"
AA = 4.5
HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def luminance(colour: str) -> float:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def split_schemes(css: str) -> tuple[str, str]:
    """(rules outside, rules inside) the prefers-color-scheme: dark block."""
    start = css.index("@media (prefers-color-scheme: dark)")
    return css[:start], css[start:]


def variable(css: str, name: str) -> str:
    match = re.search(rf"{re.escape(name)}:\s*(#[0-9a-fA-F]{{3,6}})", css)
    assert match, name
    return match.group(1)


def code_backgrounds() -> tuple[str, str]:
    light, dark = split_schemes((STATIC / "site.css").read_text())
    return variable(light, "--code-bg"), variable(dark, "--code-bg")


def test_contrast_arithmetic_matches_known_pairs() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54


def test_every_pygments_token_colour_reads_on_the_code_background_in_both_schemes() -> None:
    light_bg, dark_bg = code_backgrounds()
    light, dark = split_schemes((STATIC / "pygments.css").read_text())
    for rules, background in ((light, light_bg), (dark, dark_bg)):
        colours = {
            match.group(1)
            for line in rules.splitlines()
            if line.strip().startswith(".highlight .") and "background" not in line
            for match in re.finditer(r"(?<!-)color:\s*(#[0-9a-fA-F]{3,6})", line)
        }
        assert len(colours) >= 5
        failing = sorted(c for c in colours if contrast(c, background) < AA)
        assert failing == [], f"below {AA}:1 on {background}: {failing}"


def test_the_editor_colours_read_on_the_code_background_in_both_schemes() -> None:
    light_bg, dark_bg = code_backgrounds()
    light, dark = split_schemes((STATIC / "grader.css").read_text())
    for rules, background in ((light, light_bg), (dark, dark_bg)):
        names = sorted(set(re.findall(r"(--cm-[a-z]+):\s*#", rules)))
        assert len(names) >= 8
        failing = [name for name in names if contrast(variable(rules, name), background) < AA]
        assert failing == [], f"below {AA}:1 on {background}: {failing}"
