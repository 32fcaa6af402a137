"""Regenerates ``words.txt``, the word list bundled with the handwriting_fonts builder.

Run once by a maintainer (the output is committed; building the dataset never runs this):

    python datasets/handwriting_fonts/make_word_list.py [/usr/share/dict/american-english]

Sources: the 300 or so most frequent English words (typed in below, checked against the dictionary)
and a deterministic sample of ``american-english`` (Debian package ``wamerican``, SCOWL, see
CITATIONS.bib): lowercase words with a length quota per length, capitalised words (proper nouns of
the dictionary), a few possessives, plus hand-made tokens with digits and punctuation as they occur
in IAM word images. Every word uses only the 80 symbols of the English alphabet of ScrabbleGAN
(``scrabblegan_tf/core/alphabet.py``, copied here because builders stand alone) and has 1-12 characters.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from pathlib import Path

ENGLISH = "Only thewigsofrcvdampbkuq.A-210xT5'MDL,RYHJ\"ISPWENj&BC93VGFKz();#:!7U64Q8?+*ZX/%"
MAX_LEN = 12
SEED = 1234

COMMON = """
the of and to a in is it you that he was for on are with as I his they be at one have this from or
had by hot word but what some we can out other were all there when up use your how said an each she
which do their time if will way about many then them write would like so these her long make thing see
him two has look more day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live where after back
little only round man year came show every good me give our under name very through just form sentence
great think say help low line differ turn cause much mean before move right boy old too same tell does
set three want air well also play small end put home read hand port large spell add even land here must
big high such follow act why ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should country found answer school
grow study still learn plant cover food sun four between state keep eye never last let thought city tree
cross farm hard start might story saw far sea draw left late run while press close night real life few
north open seem together next white children begin got walk example ease paper group always music those
both mark often letter until mile river car feet care second book carry took science eat room friend
began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl
usual young ready above ever red list though feel talk bird soon body dog family direct pose leave song
measure door product black short numeral class wind question happen complete ship area half rock order
fire south problem piece told knew pass since top whole king space heard best hour better true during
hundred five remember step early hold west ground interest reach fast verb sing listen six table travel
less morning ten simple several vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry
dark machine note wait plan figure star box noun field rest correct able pound done beauty drive stood
contain front teach week final gave green oh quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object
decide surface deep moon island foot system busy test record boat common gold possible plane stead dry
wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes distant fill
east paint language among Mr Mrs London English
""".split()

# Tokens with digits and punctuation, as they appear in IAM / CVL word images.
SPECIAL = """
. , ; : ! ? - " ' ( ) & # 0 1 2 3 4 5 6 7 8 9 10 12 15 20 24 25 30 42 50 99 100 250 1000 1959 1960 1984
2020 3rd 1st 2nd 4th 10th 5% 50% 3:30 10:15 1/2 3/4 +1 2+2 A4 M1 B12 No.1 #1 #42 (a) (b) (1) (see) (i)
Mr. Mrs. Dr. St. etc. i.e. e.g. p.m. a.m. U.S. U.K. end. yes, no, well, now, so, then; here: it! why?
what? how? "Yes" "No" "Stop!" "Oh, don't can't won't isn't it's I'm you're we'll they've he'd
well-known long-term up-to-date self-made x-ray T-shirt co-op re-read one-way A-level
*note* a+b x*y 7*8 and/or he/she 9-5 1-0 24/7 1:0 #tag
""".split()


def valid(word: str) -> bool:
    return 0 < len(word) <= MAX_LEN and all(ch in ENGLISH for ch in word)


def main(dict_path: str = "/usr/share/dict/american-english") -> None:
    entries = [unicodedata.normalize("NFC", w.strip()) for w in Path(dict_path).read_text("utf-8").splitlines()]
    entries = [w for w in entries if w and valid(w)]
    known = set(entries)
    rng = random.Random(SEED)

    common = [w for w in dict.fromkeys(COMMON) if w in known or w.rstrip(".") in known or w in ("Mr", "Mrs")]
    lower = [w for w in entries if w.islower() and w.isalpha()]
    capital = [w for w in entries if w[0].isupper() and w[1:].islower() and w.isalpha() and len(w) > 1]
    possessive = [w for w in entries if w.endswith("'s") and len(w) > 3]

    # Length quota for the lowercase sample (mean about 6.4 letters; short words come from COMMON).
    quota = {2: 40, 3: 220, 4: 380, 5: 430, 6: 430, 7: 400, 8: 340, 9: 250, 10: 150, 11: 90, 12: 60}
    chosen: list[str] = list(common)
    taken = set(chosen)
    for length, n in quota.items():
        pool = sorted(w for w in lower if len(w) == length and w not in taken)
        pick = rng.sample(pool, min(n, len(pool)))
        chosen += pick
        taken.update(pick)
    for pool, n in ((capital, 500), (possessive, 80)):
        pick = rng.sample(sorted(set(pool) - taken), n)
        chosen += pick
        taken.update(pick)
    # Capitalised versions of some common words (sentence starts).
    chosen += [w.capitalize() for w in rng.sample(common, 80) if w.capitalize() not in taken]
    chosen += [w for w in dict.fromkeys(SPECIAL) if valid(w) and w not in taken]
    chosen = list(dict.fromkeys(chosen))
    assert all(valid(w) for w in chosen)

    out = Path(__file__).with_name("words.txt")
    header = (
        "# Word list of the handwriting_fonts dataset: generated by make_word_list.py from\n"
        "# /usr/share/dict/american-english (wamerican, SCOWL) plus common words and IAM-like tokens.\n"
        "# One word per line, UTF-8; lines starting with \"# \" (hash, space) are comments.\n"
    )
    out.write_text(header + "\n".join(chosen) + "\n", encoding="utf-8")
    print(f"{len(chosen)} words -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
