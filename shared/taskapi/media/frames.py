"""Pillow side of the renderer: a scene's still picture (background from the style and theme, the
title, key terms as chips, the logo, the scene's place in the video) and the subtitle band burned
over it.

Text uses only Pillow's bundled font (ImageFont.load_default(size=...)): nothing is assumed about
the machine's fonts. That font covers Latin scripts; other scripts draw as empty boxes.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont

LOGO_HEIGHT = 0.08
"""The logo's height as a share of the picture's."""
MAX_TITLE_LINES = 3
MAX_CHIP_ROWS = 2
MAX_SUBTITLE_LINES = 3
_ELLIPSIS = "…"

_HUES = {
    "red": 0.0,
    "crimson": 0.97,
    "orange": 0.07,
    "amber": 0.1,
    "gold": 0.12,
    "yellow": 0.15,
    "lime": 0.23,
    "green": 0.33,
    "forest": 0.36,
    "teal": 0.47,
    "cyan": 0.5,
    "ocean": 0.55,
    "sky": 0.56,
    "blue": 0.61,
    "navy": 0.63,
    "indigo": 0.69,
    "purple": 0.76,
    "violet": 0.79,
    "magenta": 0.85,
    "pink": 0.92,
}
_LIGHT = frozenset({"light", "bright", "white", "pastel", "paper", "minimal", "minimalist", "clean", "sketch"})
_VIVID = frozenset({"cartoon", "vibrant", "colorful", "colourful", "playful", "comic", "anime", "kids", "fun", "pop"})
_MUTED = frozenset({"realistic", "corporate", "professional", "business", "documentary", "photographic", "elegant"})


@dataclass(frozen=True)
class Palette:
    top: RGB
    bottom: RGB
    accent: RGB
    text: RGB
    muted: RGB
    chip: RGB
    chip_text: RGB


def palette_for(image_style: str | None, theme: str | None) -> Palette:
    """Colours from the request's words, the same for the same words: a colour named in the theme
    (then the style) sets the hue, else a hash of both does; "light", "minimal"... give a light
    background (dark otherwise); "cartoon", "vibrant"... saturate, "realistic", "corporate"... tone
    down."""
    theme_words = re.findall(r"[a-z]+", (theme or "").lower())
    style_words = re.findall(r"[a-z]+", (image_style or "").lower())
    words = set(theme_words) | set(style_words)
    named = [_HUES[w] for w in (*theme_words, *style_words) if w in _HUES]
    digest = hashlib.sha256(f"{' '.join(style_words)}|{' '.join(theme_words)}".encode()).digest()
    hue = named[0] if named else digest[0] / 256
    saturation = 0.75 if words & _VIVID else 0.3 if words & _MUTED else 0.55
    if words & _LIGHT and "dark" not in words:
        top, bottom = _hls(hue, 0.95, saturation * 0.7), _hls(hue + 0.04, 0.84, saturation * 0.7)
        accent = _hls(hue + 0.03, 0.40, min(1.0, saturation + 0.2))
        text, muted = (24, 27, 36), (84, 90, 104)
    else:
        top, bottom = _hls(hue, 0.20, saturation), _hls(hue + 0.05, 0.07, saturation)
        accent = _hls(hue + 0.06, 0.62, min(1.0, saturation + 0.25))
        text, muted = (246, 246, 248), (186, 192, 204)
    chip_text = (16, 18, 24) if _luminance(accent) > 0.45 else (250, 250, 252)
    return Palette(top, bottom, accent, text, muted, accent, chip_text)


def scene_picture(
    size: tuple[int, int],
    palette: Palette,
    title: str,
    terms: Sequence[str],
    *,
    logo: Image.Image | None,
    number: int,
    count: int,
) -> Image.Image:
    """The scene's still: everything but the subtitles."""
    width, height = size
    unit = _unit(size)
    margin = max(4, round(0.065 * unit))
    image = _background(size, palette, number)
    draw = ImageDraw.Draw(image)

    right = width - margin
    if logo is not None:
        image.paste(logo, (width - margin - logo.width, margin), logo)
        right -= logo.width + margin

    small = font(round(0.032 * unit))
    draw.text((margin, margin), f"{number} / {count}", font=small, fill=palette.muted)
    y = margin + _line_height(small) + round(0.03 * unit)

    title_font = font(round(0.085 * unit))
    stroke = round(title_font.size / 60)  # a heavier stroke: the bundled font has no bold
    for line in wrap(title.strip(), title_font, right - margin, MAX_TITLE_LINES):
        draw.text((margin, y), line, font=title_font, fill=palette.text, stroke_width=stroke, stroke_fill=palette.text)
        y += round(_line_height(title_font) * 1.12)

    y += round(0.02 * unit)
    draw.rectangle((margin, y, margin + round(0.14 * width), y + max(2, round(0.009 * unit))), fill=palette.accent)
    y += round(0.06 * unit)
    _chips(draw, [t.strip() for t in terms if t.strip()], palette, margin, width - margin, y, unit)

    bar = max(2, round(0.008 * unit))
    draw.rectangle((0, height - bar, width, height), fill=_mix(palette.bottom, palette.muted, 0.25))
    draw.rectangle((0, height - bar, round(width * number / max(count, 1)), height), fill=palette.accent)
    return image


def with_subtitle(picture: Image.Image, text: str) -> Image.Image:
    """A copy of the picture with `text` in a darkened band at the bottom, centred."""
    width, height = picture.size
    unit = _unit(picture.size)
    margin = max(4, round(0.065 * unit))
    subtitle_font = font(round(0.05 * unit))
    lines = balanced_wrap(text.strip(), subtitle_font, width - 2 * margin, MAX_SUBTITLE_LINES)
    if not lines:
        return picture
    line_height = round(_line_height(subtitle_font) * 1.2)
    padding = round(0.02 * unit) + 1
    bottom = height - max(2, round(0.008 * unit)) - round(0.025 * unit)
    top = bottom - len(lines) * line_height - 2 * padding
    image = picture.copy()
    box = (0, top, width, bottom)
    band = image.crop(box)
    image.paste(Image.blend(band, Image.new("RGB", band.size, (0, 0, 0)), 0.62), box)
    draw = ImageDraw.Draw(image)
    y = top + padding
    for line in lines:
        x = (width - draw.textlength(line, font=subtitle_font)) / 2
        draw.text((x, y), line, font=subtitle_font, fill=(255, 255, 255))
        y += line_height
    return image


def fit_logo(logo: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The logo as RGBA, LOGO_HEIGHT of the picture's height (at most a quarter of its width)."""
    width, height = size
    rgba = logo.convert("RGBA")
    target_height = max(1, round(height * LOGO_HEIGHT))
    target_width = max(1, round(rgba.width * target_height / max(rgba.height, 1)))
    if target_width > width // 4:
        target_width = max(1, width // 4)
        target_height = max(1, round(rgba.height * target_width / max(rgba.width, 1)))
    return rgba.resize((target_width, target_height), Image.Resampling.LANCZOS)


@lru_cache(maxsize=32)
def font(size: int) -> Font:
    """Pillow's bundled font at `size` pixels."""
    face = ImageFont.load_default(size=max(6, size))
    if not isinstance(face, ImageFont.FreeTypeFont):  # only a Pillow built without FreeType
        raise RuntimeError("Pillow has no FreeType support: its bundled font cannot be scaled")
    return face


def wrap(text: str, face: Font, width: int, max_lines: int) -> list[str]:
    """Lines no wider than `width` pixels, words kept whole unless one alone is too wide; past
    max_lines the last line ends with an ellipsis."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _width(candidate, face) <= width:
            lines[-1] = candidate
            continue
        while _width(word, face) > width and len(word) > 1:
            cut = _fit_prefix(word, face, width)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and _width(last + _ELLIPSIS, face) > width:
            last = last[:-1].rstrip()
        lines = [*lines[: max_lines - 1], last + _ELLIPSIS]
    return lines


def balanced_wrap(text: str, face: Font, width: int, max_lines: int) -> list[str]:
    """As wrap(), on as few lines, but as even as they can be (no line of one word under a full one)."""
    lines = wrap(text, face, width, max_lines)
    if not 1 < len(lines) <= max_lines or lines[-1].endswith(_ELLIPSIS):
        return lines
    narrow, wide = 1, width  # the narrowest width that still takes no more lines, by bisection
    while narrow < wide:
        middle = (narrow + wide) // 2
        if len(wrap(text, face, middle, max_lines + 1)) <= len(lines):
            wide = middle
        else:
            narrow = middle + 1
    return wrap(text, face, wide, max_lines)


def _chips(
    draw: ImageDraw.ImageDraw,
    terms: list[str],
    palette: Palette,
    left: int,
    right: int,
    top: int,
    unit: int,
) -> None:
    face = font(round(0.045 * unit))
    pad_x, pad_y = round(face.size * 0.6), round(face.size * 0.32)
    height = _line_height(face) + 2 * pad_y
    gap = round(face.size * 0.5)
    x, y, row = left, top, 1
    for term in terms:
        (label,) = wrap(term, face, right - left - 2 * pad_x, 1)
        chip_width = round(_width(label, face)) + 2 * pad_x
        if x > left and x + chip_width > right:
            row += 1
            if row > MAX_CHIP_ROWS:
                return
            x, y = left, y + height + gap
        draw.rounded_rectangle((x, y, x + chip_width, y + height), radius=height // 2, fill=palette.chip)
        draw.text((x + pad_x, y + pad_y), label, font=face, fill=palette.chip_text)
        x += chip_width + gap


def _background(size: tuple[int, int], palette: Palette, number: int) -> Image.Image:
    """A vertical gradient with a soft disc of the accent colour, placed by the scene number."""
    width, height = size
    ramp = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    image = Image.composite(Image.new("RGB", size, palette.bottom), Image.new("RGB", size, palette.top), ramp)
    radius = round(0.42 * max(width, height))
    centre_x = round(width * (0.78 + 0.08 * ((number * 5) % 3 - 1)))
    centre_y = round(height * (0.62 + 0.1 * ((number * 7) % 3 - 1)))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius), fill=34)
    return Image.composite(Image.new("RGB", size, palette.accent), image, mask)


def _unit(size: tuple[int, int]) -> int:
    """The length text is sized by: the height, or for a narrow picture what a 16:9 one as wide has."""
    width, height = size
    return max(1, min(height, round(width * 9 / 16)))


def _line_height(face: Font) -> int:
    return max(1, round(face.getbbox("Ag")[3]))


def _width(text: str, face: Font) -> float:
    return float(face.getlength(text))


def _fit_prefix(word: str, face: Font, width: int) -> int:
    cut = len(word) - 1
    while cut > 1 and _width(word[:cut], face) > width:
        cut -= 1
    return cut


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    red, green, blue = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


def _luminance(colour: RGB) -> float:
    red, green, blue = (c / 255 for c in colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _mix(a: RGB, b: RGB, share: float) -> RGB:
    red, green, blue = (round(x + (y - x) * share) for x, y in zip(a, b, strict=True))
    return red, green, blue
