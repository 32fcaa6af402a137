"""handwriting_fonts: English words rendered with handwriting-like fonts (the embedded default dataset).

Needs no download: words come from the bundled ``words.txt``, glyphs from the handwriting fonts of
Debian/Ubuntu packages (see ``FONT_PACKAGES``) found under ``/usr/share/fonts`` (or under a folder
given by the ``HANDWRITING_FONTS_DIR`` environment variable or the ``fonts_dir`` builder argument).

Each example is rendered from its own random generator seeded by (config seed, split, index), so a
build is reproducible on a machine with the same fonts and Pillow/FreeType versions, and the ``default``
and ``h32`` configs hold the same words in the same styles at two resolutions.

Stand-alone: TFDS, numpy and Pillow only (``tfds build datasets/handwriting_fonts`` works offline).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from os import environ as _environ  # only the environment; files go through tfds.core.Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw, ImageFont

NAME = "handwriting_fonts"

# Debian package -> folder of its fonts below a fonts root such as /usr/share/fonts/{truetype,opentype}.
FONT_PACKAGES = {
    "fonts-dkg-handwriting": "fifthhorseman",
    "fonts-breip": "breip",
    "fonts-femkeklaver": "femkeklaver",
    "fonts-dancingscript": "dancingscript",
    "fonts-kristi": "kristi",
    "fonts-kaushanscript": "kaushanscript",
    "fonts-sjfonts": "sjfonts",
    "fonts-ecolier-court": "ecolier-court",
    "fonts-comic-neue": "comic-neue",
}
FONTS_DIR_ENV = "HANDWRITING_FONTS_DIR"
FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".TTF", ".OTF")
SPLIT_CODES = {"train": 0, "test": 1}  # part of every example's seed

_WORDS_FILE = "words.txt"


@dataclasses.dataclass(eq=False)
class HandwritingFontsConfig(tfds.core.BuilderConfig):
    """``height``: pixel height of every image; ``num_train`` / ``num_test``: examples per split."""

    height: int = 64
    num_train: int = 8000
    num_test: int = 1000
    seed: int = 0


class Builder(
    tfds.core.GeneratorBasedBuilder,
    # Loaded a second time under another module name (the tfds CLI, then the library): no clash.
    skip_registration=NAME in tfds.core.registered._DATASET_REGISTRY,  # pylint: disable=protected-access
):
    """Words rendered with handwriting fonts: random size, slant, weight, jitter, ink and paper."""

    name = NAME
    # Metadata (README.md, CITATIONS.bib) and code path are this folder, whatever the module name.
    pkg_dir_path = tfds.core.Path(__file__).parent
    code_path = tfds.core.Path(__file__)
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        HandwritingFontsConfig(
            name="default", height=64,
            description="8,000 train / 1,000 test words, images 64 px high.",
        ),
        HandwritingFontsConfig(
            name="h32", height=32,
            description="The same words and styles as `default`, rendered 32 px high (ScrabbleGAN's "
            "input height).",
        ),
        HandwritingFontsConfig(
            name="tiny", height=32, num_train=12, num_test=4,
            description="12 train / 4 test words, 32 px high: for tests.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    def __init__(self, *, fonts_dir: str | None = None, **kwargs):
        """``fonts_dir``: use every .ttf/.otf below this folder instead of the packaged fonts."""
        self._fonts_dir = fonts_dir
        super().__init__(**kwargs)
        self._original_state["fonts_dir"] = fonts_dir  # for pickling

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "text": tfds.features.Text(),
                "writer_id": tfds.features.Text(),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("image", "text"),
            homepage="https://github.com/amzn/convolutional-handwriting-gan",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {
            "train": self._generate_examples("train", cfg.num_train),
            "test": self._generate_examples("test", cfg.num_test),
        }

    def _generate_examples(self, split: str, num_examples: int):
        cfg = self.builder_config
        fonts = find_fonts(self._fonts_dir)
        words = load_words()
        renderer = Renderer(fonts, words)
        for index in range(num_examples):
            example = renderer.example(split, index, height=cfg.height, seed=cfg.seed)
            yield example["id"], example


# ----------------------------------------------------------------------------------------------
# Fonts and words
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FontFile:
    path: str
    group: str  # package folder (styles of one family are drawn together as one group)

    @property
    def stem(self) -> str:
        return tfds.core.Path(self.path).stem


def _fonts_below(root: tfds.core.Path) -> list[tfds.core.Path]:
    out = []
    for folder, _, files in root.walk():
        out.extend(folder / name for name in files if name.endswith(FONT_SUFFIXES))
    return sorted(set(out))


def find_fonts(fonts_dir: str | None = None) -> list[FontFile]:
    """The handwriting fonts to render with, sorted by path.

    ``fonts_dir`` (or the ``HANDWRITING_FONTS_DIR`` environment variable): every font file below it,
    grouped by parent folder. Otherwise the fonts of ``FONT_PACKAGES`` below the usual font roots.

    Raises:
      FileNotFoundError: when no font is found, naming the Debian packages to install.
    """
    fonts_dir = fonts_dir or _environ.get(FONTS_DIR_ENV) or None
    found: list[FontFile] = []
    if fonts_dir is not None:
        root = tfds.core.Path(fonts_dir).expanduser()
        if root.exists():
            found = [FontFile(str(p), p.parent.name) for p in _fonts_below(root)]
        where = str(root)
    else:
        folders = set(FONT_PACKAGES.values())
        seen: set[str] = set()
        for root_name in FONT_ROOTS:
            root = tfds.core.Path(root_name).expanduser()
            if not root.exists():
                continue
            for p in _fonts_below(root):
                if p.parent.name in folders and p.name not in seen:
                    seen.add(p.name)
                    found.append(FontFile(str(p), p.parent.name))
        where = ", ".join(FONT_ROOTS)
    usable = [f for f in found if _glyphs(f.path)]
    if not usable:
        raise FileNotFoundError(
            f"No handwriting font found in {where}. Install them with\n"
            f"  sudo apt-get install {' '.join(FONT_PACKAGES)}\n"
            f"or point {FONTS_DIR_ENV} (or the builder's fonts_dir argument) at a folder of "
            ".ttf/.otf fonts."
        )
    return sorted(usable, key=lambda f: f.path)


def load_words(path: str | None = None) -> list[str]:
    """Words of ``path`` (default: the bundled words.txt): one per line.

    Lines starting with ``"# "`` (hash and space) are comments; ``#``, ``#1`` etc. are words.
    """
    path = tfds.core.Path(path) if path else tfds.core.Path(__file__).parent / _WORDS_FILE
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not line.startswith("# "):
            words.append(word)
    if not words:
        raise ValueError(f"No word in {path}")
    return words


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=64)
def _glyphs(path: str) -> frozenset[str]:
    """The printable ASCII characters the font draws (not as its missing-glyph box)."""
    try:
        font = _font(path, 32)
    except OSError:
        return frozenset()
    missing = font.getmask("\U000f0000")  # a private-use code point: rendered as .notdef
    missing_key = (missing.size, bytes(missing))
    out = set()
    for code in range(0x21, 0x7F):
        ch = chr(code)
        mask = font.getmask(ch)
        if mask.getbbox() is not None and (mask.size, bytes(mask)) != missing_key:
            out.add(ch)
    return frozenset(out)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

_RENDER_SIZE = 64  # nominal font size of the high-resolution drawing, before the final resize
_REF_TEXT = "Hdlbfkghjpqy"
_OUTLINE_FONTS = {"femkeklaver"}  # outlined capitals: a thick pen fills them into blobs  # tall ascenders and deep descenders: the line box of a font


class Renderer:
    """Draws examples; each one only depends on (seed, split, index) and the fonts and words."""

    def __init__(self, fonts: list[FontFile], words: list[str]):
        self.fonts = fonts
        self.groups = sorted({f.group for f in fonts})
        self.words = words

    def example(self, split: str, index: int, *, height: int, seed: int = 0) -> dict:
        code = SPLIT_CODES.get(split, zlib.crc32(split.encode()))
        rng = np.random.default_rng([seed, code, index])
        word = self.words[int(rng.integers(len(self.words)))]
        # A family first (so that a family with six styles is not six times as frequent), then a style;
        # only fonts that draw every character of the word.
        chars = set(word) - {" "}
        fonts = [f for f in self.fonts if chars <= _glyphs(f.path)]
        if not fonts:  # no font draws it: fall back to the first word every font draws
            word = next(w for w in self.words if all(set(w) <= _glyphs(f.path) for f in self.fonts))
            fonts = self.fonts
        groups = sorted({f.group for f in fonts})
        group = groups[int(rng.integers(len(groups)))]
        members = [f for f in fonts if f.group == group]
        font = members[int(rng.integers(len(members)))]
        max_stroke = 1 if font.group in _OUTLINE_FONTS else 2
        image = render_word(word, font.path, rng, height=height, max_stroke=max_stroke)
        return {
            "image": image[:, :, None],
            "text": word,
            "writer_id": font.stem,
            "id": f"{split}-{index:06d}",
        }


def render_word(
    text: str, font_path: str, rng: np.random.Generator, *, height: int, max_stroke: int = 2
) -> np.ndarray:
    """A uint8 [height, width] image of ``text``: dark ink on light paper, tight horizontal crop.

    All random draws come from ``rng`` in a fixed order that does not depend on ``height``, so one
    seed gives the same word image at every height.
    """
    size = int(round(_RENDER_SIZE * rng.uniform(0.85, 1.15)))
    font = _font(font_path, size)
    # Pen width: a target stroke thickness relative to the font's x-height (fonts with small letters
    # in a big em, like Kristi, would otherwise fill their loops), reached with Pillow's stroke.
    scale = size / _RENDER_SIZE
    native, x_height = _native_width(font_path)
    pen = rng.uniform(0.06, 0.17) * x_height * scale
    stroke = int(np.clip(round((pen - native * scale) / 2), 0, max_stroke))
    spacing = rng.uniform(-0.03, 0.07) * size  # extra space between letters
    wave_amp = rng.uniform(0.0, 0.04) * size  # slow baseline drift
    wave_len = rng.uniform(3.0, 8.0)  # in letters
    wave_phase = rng.uniform(0, 2 * np.pi)
    char_rot = rng.uniform(0.0, 4.0)  # degrees, per-letter rotation scale
    char_jit = rng.uniform(0.0, 0.03) * size  # per-letter baseline jitter

    ascent, descent = font.getmetrics()
    pad = size  # room for jitter and the letters' overhangs
    advance_total = sum(font.getlength(ch) for ch in text) + spacing * len(text)
    canvas = np.zeros((int(ascent + descent + 2 * pad), int(advance_total + 2 * pad + size)), np.uint8)
    baseline = pad + ascent
    x = float(pad)
    for i, ch in enumerate(text):
        if ch != " ":
            dy = wave_amp * np.sin(wave_phase + 2 * np.pi * i / wave_len) + rng.normal() * char_jit
            dx = rng.normal() * char_jit
            glyph = _glyph(font_path, size, ch, stroke)
            _draw_char(canvas, glyph, x + dx, baseline + dy, rng.normal() * char_rot)
        x += font.getlength(ch) + spacing

    shear = rng.uniform(-0.25, 0.4)  # slant: x += shear * (height above the baseline)
    theta = np.deg2rad(rng.normal(0, 1.2))  # slight rotation of the whole word
    m_top, m_bot = rng.uniform(0.02, 0.12, size=2)  # vertical margins, share of the line box
    margin_px = rng.uniform(1.0, 3.5, size=2)  # horizontal margins in final pixels
    gamma = rng.uniform(0.7, 1.3)  # stroke contrast (>1 thins the anti-aliased edges)
    paper = rng.uniform(215, 252)
    ink_tone = rng.uniform(5, 80)
    paper_slope = rng.uniform(-6, 6)
    noise = rng.uniform(0.5, 3.5)

    # The font's line box (so the letters of a font keep their size relative to the image height).
    # Clamped to 2 x-heights above and 1 below the baseline: some fonts (dkg, Ecolier) have loops of
    # a whole em and would otherwise draw tiny letters; the crop still contains all of the ink.
    ref = font.getbbox(_REF_TEXT, anchor="ls")  # (left, top, right, bottom) from the baseline
    line_top = baseline + max(ref[1], -2.0 * x_height * scale)
    line_bottom = baseline + min(ref[3], 1.0 * x_height * scale)
    rows = np.nonzero(canvas.max(axis=1) > 20)[0]
    cols = np.nonzero(canvas.max(axis=0) > 20)[0]
    if cols.size == 0:  # nothing drawn (cannot happen with checked glyphs): an empty word box
        rows = np.array([line_top, line_bottom - 1], dtype=int)
        cols = np.array([pad, pad + max(1, int(advance_total))], dtype=int)
    # Work on a crop around the ink and the line box (slant and rotation need some room).
    r0 = int(min(rows[0], line_top)) - 4
    r1 = int(max(rows[-1] + 1, line_bottom)) + 4
    slack = int(abs(shear) * (r1 - r0) + abs(np.sin(theta)) * (cols[-1] - cols[0]) / 2) + 8
    r0, r1 = max(0, r0 - slack), min(canvas.shape[0], r1 + slack)
    c0, c1 = max(0, cols[0] - slack), min(canvas.shape[1], cols[-1] + 1 + slack)
    img = Image.fromarray(np.ascontiguousarray(canvas[r0:r1, c0:c1]), mode="L")
    baseline, line_top, line_bottom = baseline - r0, line_top - r0, line_bottom - r0
    img = _affine(img, shear, theta, baseline)

    arr = np.asarray(img)
    rows = np.nonzero(arr.max(axis=1) > 20)[0]
    cols = np.nonzero(arr.max(axis=0) > 20)[0]
    if cols.size == 0:
        rows, cols = np.array([line_top, line_bottom - 1]), np.array([0, img.width - 1])
    top = min(float(rows[0]), line_top)
    bottom = max(float(rows[-1] + 1), line_bottom)
    box_h = bottom - top
    top, bottom = top - m_top * box_h, bottom + m_bot * box_h
    scale = height / (bottom - top)
    left = cols[0] - margin_px[0] / scale
    right = cols[-1] + 1 + margin_px[1] / scale
    out_w = max(1, int(round((right - left) * scale)))
    box = (max(0.0, left), max(0.0, top), min(float(img.width), right), min(float(img.height), bottom))
    alpha = np.asarray(img.resize((out_w, height), Image.Resampling.LANCZOS, box=box), np.float32)
    alpha = np.clip(alpha / 255.0, 0.0, 1.0) ** gamma

    paper_field = paper + paper_slope * np.linspace(-1.0, 1.0, out_w, dtype=np.float32)[None, :]
    value = paper_field - alpha * (paper_field - ink_tone)
    value = value + rng.normal(0.0, noise, size=value.shape)
    return np.clip(np.round(value), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _native_width(path: str) -> tuple[float, float]:
    """Approximate stroke thickness (2 * area / perimeter) and x-height of the font, in pixels at
    ``_RENDER_SIZE``."""
    font = _font(path, _RENDER_SIZE)
    layer = Image.new("L", (8 * _RENDER_SIZE, 3 * _RENDER_SIZE), 0)
    ImageDraw.Draw(layer).text((10, 2 * _RENDER_SIZE), "nmuohe", font=font, fill=255, anchor="ls")
    a = np.asarray(layer) > 127
    edges = (a[1:] != a[:-1]).sum() + (a[:, 1:] != a[:, :-1]).sum()
    top, bottom = font.getbbox("x", anchor="ls")[1::2]
    x_height = float(bottom - top) if bottom > top else 0.5 * _RENDER_SIZE
    return float(2 * a.sum() / max(1, edges)), x_height


@functools.lru_cache(maxsize=16384)
def _glyph(path: str, size: int, ch: str, stroke: int) -> tuple[Image.Image, int, int] | None:
    """The glyph of ``ch`` as a small 'L' layer and the position of its baseline-left origin in it."""
    font = _font(path, size)
    left, top, right, bottom = font.getbbox(ch, anchor="ls", stroke_width=stroke)
    pad = 3
    w, h = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
    if w <= 2 * pad or h <= 2 * pad:
        return None
    ox, oy = pad - left, pad - top
    layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(layer).text(
        (ox, oy), ch, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255
    )
    return layer, ox, oy


def _draw_char(ink: np.ndarray, glyph, x: float, y: float, angle: float) -> None:
    """Max-composites ``glyph`` (from ``_glyph``) with its origin at (x, y), rotated by ``angle``°."""
    if glyph is None:
        return
    layer, ox, oy = glyph
    if abs(angle) > 0.5:
        layer = layer.rotate(angle, resample=Image.Resampling.BILINEAR, center=(ox, oy))
    arr = np.asarray(layer)
    h, w = arr.shape
    x0, y0 = int(round(x - ox)), int(round(y - oy))
    H, W = ink.shape
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(H, y0 + h), min(W, x0 + w)
    if ye <= ys or xe <= xs:
        return
    region = ink[ys:ye, xs:xe]
    np.maximum(region, arr[ys - y0 : ye - y0, xs - x0 : xe - x0], out=region)


def _affine(img: Image.Image, shear: float, theta: float, baseline: float) -> Image.Image:
    """Shear (x += shear * (baseline - y)) then rotate by ``theta`` about the image centre."""
    w, h = img.size
    cx, cy = w / 2.0, baseline
    # forward: p' = R (S (p - c)) + c ; Pillow wants the inverse map output -> input.
    s = np.array([[1.0, -shear], [0.0, 1.0]])
    c, si = np.cos(theta), np.sin(theta)
    r = np.array([[c, -si], [si, c]])
    inv = np.linalg.inv(r @ s)
    t = np.array([cx, cy]) - inv @ np.array([cx, cy])
    extra = int(abs(shear) * h) // 2
    # widen the canvas so that the sheared ink stays inside, shifting the content by `extra`
    out_w = w + 2 * extra
    t = t - inv @ np.array([extra, 0.0])
    coeffs = (inv[0, 0], inv[0, 1], t[0], inv[1, 0], inv[1, 1], t[1])
    return img.transform((out_w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
