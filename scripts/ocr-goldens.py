#!/usr/bin/env python3
"""Reads the 1080p golden screens back with OCR: a second pair of eyes for the review of joining,
conjuncts and direction (docs/locales.md, "How the goldens were checked"). Not a CI gate: OCR
engines differ between versions, and the goldens are already compared pixel for pixel by
tests/screen_goldens.rs. This tells whether what is drawn reads as the catalogue's sentence.

For each language and state it OCRs docs/screens/<lang>/tv-1080p-<state>.png with tesseract
(Debian: tesseract-ocr plus tesseract-ocr-<lang>), and for each sentence the state shows (its
parts between placeholders, spaces removed: Thai and CJK have none) counts the characters found
in order in what OCR read (difflib's matching blocks). Two controls show what the figure means:
- "reversed": the same parts reversed; text drawn in the wrong direction would score like this.
- --control: the sentences drawn a glyph per code point (PIL's BASIC layout: no shaping, no
  bidi), the way the screen drew non-ASCII before issue 19; a shaped line should score far above.

usage: scripts/ocr-goldens.py [--control] [LANG ...]     (default: every language)
"""
import difflib
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
TESSERACT = {
    "en": "eng", "es": "spa", "pt-BR": "por", "fr": "fra", "de": "deu", "it": "ita",
    "nl": "nld", "pl": "pol", "tr": "tur", "ru": "rus", "uk": "ukr", "el": "ell", "ar": "ara",
    "he": "heb", "hi": "hin", "th": "tha", "zh-Hans": "chi_sim", "zh-Hant": "chi_tra",
    "ja": "jpn", "ko": "kor",
}
# The sentences each state draws on the 1080p screen (screen/layout: the code screen's steps
# are cut at {url} and {code}, which are drawn as blocks of their own).
SHOWN = {
    "code": ["code_title", "code_steps", "code_expires", "warning"],
    "renewed": ["code_title_renewed", "code_steps", "code_expires_new", "warning"],
    "retrying": ["code_title", "code_steps", "retrying_code", "retrying_in_code", "warning"],
    "clock": ["clock_title", "clock_body"],
    "paired": ["paired_welcome", "paired_account", "paired_body", "paired_unlink"],
    "denied": ["denied_title", "denied_body"],
    "error": ["error_title", "error_service"],
}
NOTO = Path("/usr/share/fonts/truetype/noto")
CONTROL_FONT = {"ar": "NotoSansArabic-Regular.ttf", "he": "NotoSansHebrew-Regular.ttf",
                "hi": "NotoSansDevanagari-Regular.ttf", "th": "NotoSansThai-Regular.ttf"}


def squeeze(s):
    return re.sub(r"\s+", "", s)


def parts(sentence):
    """The sentence's text between placeholders, three characters or more."""
    return [p for p in (squeeze(x) for x in re.split(r"\{[a-z]+\}", sentence)) if len(p) >= 3]


def found(expected, read):
    m = difflib.SequenceMatcher(None, expected, read, autojunk=False)
    return sum(b.size for b in m.get_matching_blocks())


def ocr(image, lang, psm="3"):
    gray = image.convert("L")
    if gray.getpixel((0, 0)) < 128:  # light text on a dark theme: OCR wants dark on light
        gray = ImageOps.invert(gray)
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        gray.save(f.name)
        out = subprocess.run(["tesseract", f.name, "-", "-l", TESSERACT[lang], "--psm", psm],
                             capture_output=True, text=True, check=True)
    return squeeze(out.stdout)


def golden(lang, state):
    folder = ROOT / "docs" / "screens" / ("" if lang == "en" else lang)
    return Image.open(folder / f"tv-1080p-{state}.png")


def review(lang):
    catalogue = tomllib.loads((ROOT / "locales" / f"{lang}.toml").read_text())
    total = hit = reversed_hit = 0
    worst = []
    for state, keys in SHOWN.items():
        read = ocr(golden(lang, state), lang)
        for key in keys:
            for p in parts(catalogue[key]):
                n = found(p, read)
                total += len(p)
                hit += n
                reversed_hit += found(p[::-1], read)
                worst.append((n / len(p), state, key))
    worst.sort()
    low = ", ".join(f"{s}/{k} {r:.2f}" for r, s, k in worst[:2])
    print(f"{lang:8} {hit / total:6.3f} ({hit}/{total})   reversed {reversed_hit / total:5.2f}"
          f"   lowest: {low}")


def control(lang):
    """The same sentences drawn unshaped and shaped by PIL, read back the same way."""
    catalogue = tomllib.loads((ROOT / "locales" / f"{lang}.toml").read_text())
    keys = ["code_title", "paired_body", "denied_body", "error_service", "clock_body",
            "retrying_code", "warning"]
    for layout, name in [(ImageFont.Layout.BASIC, "unshaped"), (ImageFont.Layout.RAQM, "raqm")]:
        font = ImageFont.truetype(str(NOTO / CONTROL_FONT[lang]), 40, layout_engine=layout)
        image = Image.new("L", (1900, 90 * len(keys)), 255)
        draw = ImageDraw.Draw(image)
        for i, key in enumerate(keys):
            draw.text((20, 20 + 90 * i), catalogue[key], font=font, fill=0)
        read = ocr(image, lang, psm="4")
        expected = [squeeze(catalogue[k]) for k in keys]
        hit = sum(found(e, read) for e in expected)
        print(f"{lang:8} control {name:8} {hit / sum(map(len, expected)):6.3f}")


def main(args):
    with_control = "--control" in args
    langs = [a for a in args if a != "--control"] or list(TESSERACT)
    print("language  found in order (chars)   reversed control   lowest sentences")
    for lang in langs:
        review(lang)
        if with_control and lang in CONTROL_FONT:
            control(lang)


if __name__ == "__main__":
    main(sys.argv[1:])
