"""Recognition metrics: WER, CER and NED over (prediction, ground truth) pairs.

Every function accepts either one list of ``(prediction, truth)`` pairs or two parallel lists
(``predictions``, ``truths``)::

    wer([("hallo", "hello"), ("world", "world")])   # 0.5
    wer(["hallo", "world"], ["hello", "world"])     # the same

Texts (``str``, or UTF-8 ``bytes``) are NFC-normalised first, then compared as sequences of Unicode
code points, so a precomposed ``ü`` (U+00FC) and ``u`` + combining diaeresis (U+0075 U+0308) are the
same single symbol.

Definitions (N samples, prediction p_i, ground truth t_i, |t| = number of code points, d = Levenshtein
distance, the least number of single-symbol insertions, deletions and substitutions turning one
sequence into the other; Levenshtein 1966, "Binary codes capable of correcting deletions, insertions
and reversals", Soviet Physics Doklady 10(8)):

- **WER** (word error rate) = #{i : p_i != t_i} / N, the share of samples not read exactly. The
  word-level HTR literature (ScrabbleGAN, Fogel et al., CVPR 2020, Sec. 4; Kang et al., GANwriting,
  ECCV 2020) reads one word per sample, so this is the share of misread words. For samples holding
  several words (DHSD street names with spaces) it is the sample (sequence) error rate: a sample with
  one wrong word counts as one error, not as a fraction.
- **CER** (character error rate) = sum_i d(p_i, t_i) / sum_i |t_i|: total edits over total ground-truth
  characters (micro average; e.g. Graves et al., TPAMI 2009; the ICDAR HTR competitions). Insertions
  count, so CER can exceed 1.
- **NED** (normalised edit distance) = (1/N) sum_i d(p_i, t_i) / |t_i|: the edit distance normalised by
  the ground-truth length, averaged over samples (macro average), as reported by ScrabbleGAN
  (Fogel et al. 2020, Sec. 4.2, "WER and NED"). It can exceed 1 (long spurious predictions). An empty
  ground truth has NED 0 when the prediction is empty too, else ``len(prediction)`` (it is divided by
  max(1, |t|)).

All three are 0 for perfect reading. An empty list of pairs is an error (the rates would be 0/0).
"""

from __future__ import annotations

import unicodedata
__all__ = ["edit_distance", "wer", "cer", "ned", "evaluate_texts", "as_pairs"]


def _text(x) -> str:
    if isinstance(x, bytes):
        x = x.decode("utf-8")
    if not isinstance(x, str):
        raise TypeError(f"Expected a str or UTF-8 bytes, got {type(x).__name__}: {x!r}")
    return unicodedata.normalize("NFC", x)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two texts (NFC, code points); unit costs for insertion,
    deletion and substitution. O(len(a) * len(b)) time, O(min) memory."""
    a, b = _text(a), _text(b)
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1,  # delete ca
                         cur[j - 1] + 1,  # insert cb
                         prev[j - 1] + (ca != cb))  # substitute (or match)
        prev = cur
    return prev[-1]


def as_pairs(pairs_or_predictions, truths=None) -> list[tuple[str, str]]:
    """``[(prediction, truth), ...]`` (NFC str) from one list of pairs or two parallel lists."""
    if truths is None:
        pairs = []
        for item in pairs_or_predictions:
            if isinstance(item, (str, bytes)) or len(item) != 2:
                raise ValueError(
                    "Pass a list of (prediction, truth) pairs, or two lists (predictions, truths); "
                    f"got the item {item!r}")
            pairs.append((_text(item[0]), _text(item[1])))
    else:
        preds, truths = list(pairs_or_predictions), list(truths)
        if len(preds) != len(truths):
            raise ValueError(f"{len(preds)} predictions but {len(truths)} ground truths")
        pairs = [(_text(p), _text(t)) for p, t in zip(preds, truths)]
    if not pairs:
        raise ValueError("No (prediction, truth) pairs: the error rates of nothing are undefined")
    return pairs


def wer(pairs_or_predictions, truths=None) -> float:
    """Share of samples whose prediction differs from the ground truth (see the module docstring)."""
    pairs = as_pairs(pairs_or_predictions, truths)
    return sum(p != t for p, t in pairs) / len(pairs)


def cer(pairs_or_predictions, truths=None) -> float:
    """Total edit distance / total ground-truth characters (see the module docstring). When every
    ground truth is empty: 0.0 if every prediction is empty too, else the total edits (divided by 1)."""
    pairs = as_pairs(pairs_or_predictions, truths)
    edits = sum(edit_distance(p, t) for p, t in pairs)
    return edits / max(1, sum(len(t) for _, t in pairs))


def ned(pairs_or_predictions, truths=None) -> float:
    """Mean over samples of edit distance / ground-truth length (see the module docstring)."""
    pairs = as_pairs(pairs_or_predictions, truths)
    return sum(edit_distance(p, t) / max(1, len(t)) for p, t in pairs) / len(pairs)


def evaluate_texts(pairs_or_predictions, truths=None) -> dict:
    """``{"wer", "cer", "ned", "num_samples", "num_chars", "num_edits"}`` in one pass."""
    pairs = as_pairs(pairs_or_predictions, truths)
    dists = [edit_distance(p, t) for p, t in pairs]
    chars = sum(len(t) for _, t in pairs)
    return {
        "wer": sum(p != t for p, t in pairs) / len(pairs),
        "cer": sum(dists) / max(1, chars),
        "ned": sum(d / max(1, len(t)) for d, (_, t) in zip(dists, pairs)) / len(pairs),
        "num_samples": len(pairs),
        "num_chars": chars,
        "num_edits": sum(dists),
    }
