"""Symbol <-> id mapping for the generator's filter bank and the recognizers' CTC outputs.

Id 0 is reserved: it is the CTC blank and the padding id of label tensors. Symbol ``i`` of the
alphabet string has id ``i + 1``, so an alphabet of N symbols gives N + 1 classes.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Iterable, Sequence

import numpy as np

BLANK_ID = 0

# The 80 symbols ScrabbleGAN uses for IAM and CVL (official code, `alphabet` of the IAM config).
ENGLISH = (
    "Only thewigsofrcvdampbkuq.A-210xT5'MDL,RYHJ\"ISPWENj&BC93VGFKz();#:!7U64Q8?+*ZX/%"
)
# RIMES: English plus the French accented letters and the degree / superscript-two signs.
FRENCH_EXTRA = "àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ°²"
FRENCH = ENGLISH + FRENCH_EXTRA
# DHSD (German street and city names): English plus umlauts, sharp s and the two accented
# letters found in its labels.
GERMAN_EXTRA = "ÄÖÜäöüßóš"
GERMAN = ENGLISH + GERMAN_EXTRA

PRESETS = {"english": ENGLISH, "french": FRENCH, "german": GERMAN}


class Alphabet:
    """An ordered set of symbols; ``encode`` maps text to ids 1..N, ``decode`` maps back.

    Text is NFC-normalised before lookup so that a decomposed ``u`` + combining diaeresis and the
    precomposed ``ü`` are the same symbol.
    """

    def __init__(self, symbols: str | Sequence[str], name: str = "custom"):
        symbols = list(symbols)
        if not symbols:
            raise ValueError("An alphabet needs at least one symbol.")
        dup = sorted({s for s in symbols if symbols.count(s) > 1})
        if dup:
            raise ValueError(f"Alphabet {name!r} repeats symbols: {dup!r}")
        for s in symbols:
            if len(s) != 1:
                raise ValueError(f"Alphabet symbols must be single characters, got {s!r}")
        self.name = name
        self.symbols = "".join(symbols)
        self._to_id = {s: i + 1 for i, s in enumerate(symbols)}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> "Alphabet":
        """One of ``english`` (IAM, CVL), ``french`` (RIMES), ``german`` (DHSD)."""
        try:
            return cls(PRESETS[name], name=name)
        except KeyError:
            raise ValueError(
                f"Unknown alphabet preset {name!r}; choose one of {sorted(PRESETS)}"
            ) from None

    @classmethod
    def from_labels(cls, labels: Iterable[str], name: str = "from_labels") -> "Alphabet":
        """The symbols found in ``labels``, in order of first appearance."""
        seen: dict[str, None] = {}
        for text in labels:
            for ch in unicodedata.normalize("NFC", text):
                seen.setdefault(ch, None)
        return cls(list(seen), name=name)

    @classmethod
    def from_json(cls, text: str) -> "Alphabet":
        d = json.loads(text)
        return cls(d["symbols"], name=d.get("name", "custom"))

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "symbols": self.symbols}, ensure_ascii=False)

    # -- queries --------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of recognizer outputs: the symbols plus the CTC blank."""
        return len(self.symbols) + 1

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, ch: str) -> bool:
        return ch in self._to_id

    def __eq__(self, other) -> bool:
        return isinstance(other, Alphabet) and other.symbols == self.symbols

    def __repr__(self) -> str:
        return f"Alphabet({self.name!r}, {len(self)} symbols)"

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the alphabet, in order."""
        out: dict[str, None] = {}
        for ch in unicodedata.normalize("NFC", text):
            if ch not in self._to_id:
                out.setdefault(ch, None)
        return list(out)

    def can_encode(self, text: str) -> bool:
        return bool(text) and not self.unknown(text)

    # -- conversion -----------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Ids 1..N of the characters of ``text``.

        Raises:
          ValueError: naming the characters outside the alphabet and the text.
        """
        text = unicodedata.normalize("NFC", text)
        bad = self.unknown(text)
        if bad:
            raise ValueError(
                f"Text {text!r} has characters outside the {self.name!r} alphabet: "
                + ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad)
            )
        return [self._to_id[ch] for ch in text]

    def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ids [batch, max_len] (pad = 0) and lengths [batch], int32."""
        ids = [self.encode(t) for t in texts]
        lengths = np.array([len(i) for i in ids], dtype=np.int32)
        out = np.zeros((len(ids), max(1, int(lengths.max(initial=0)))), dtype=np.int32)
        for row, seq in zip(out, ids):
            row[: len(seq)] = seq
        return out, lengths

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; 0 (blank / padding) is dropped."""
        return "".join(self.symbols[i - 1] for i in ids if 0 < int(i) <= len(self.symbols))
