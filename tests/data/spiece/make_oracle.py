#!/usr/bin/python3
"""SentencePiece oracle for SentencePieceTokenizer: models, hard strings and what sentencepiece 0.1.97 makes of them.

Trains small Unigram models with sentencepiece itself, then records, for every held-out string, sentencepiece's
ids = encode(text) (no BOS/EOS), pieces = encode(text, out_type=str) and decode = decode(ids); and, for id sequences
that mix in control and unknown ids, decode(ids). The C# tests must reproduce all of it exactly.

Models (all unigram, no byte fallback, pad 0 / eos 1 / unk 2 / no bos unless said):
  t5_oracle_unigram.model   T5's layout: nmt_nfkc, add_dummy_prefix, remove_extra_whitespaces; captions plus some
                            hard text (part of the CJK, accents and emoji below are known, the rest unknown)
  variant_udsym_nfkc_cf.model  user-defined symbols, an extra control symbol, nfkc_cf (case folding), extra
                            whitespace kept, a custom unk_surface
  variant_identity.model    identity normaliser (no charsmap), no dummy prefix
and t5_style_unigram.model (make_spiece.py, captions only) is checked too.

Writes, beside this script: the models above, oracle_strings.json (the held-out strings, a JSON array),
expected_<model>.json (array of {"ids", "pieces", "decode"} in string order), decode_cases_<model>.json
(array of {"ids", "decode"}). Run with Debian's python3-sentencepiece:  /usr/bin/python3 tests/data/spiece/make_oracle.py
"""
import json
import os
import random
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_spiece  # noqa: E402  (the caption generators of the existing stand-in model)

# Text the main model learns besides captions: some scripts become known pieces, others stay unknown.
TRAIN_HARD = [
    "一只猫坐在桌子上", "两只狗在草地上奔跑", "中文 字幕", "日本語の説明文", "東京の街", "a café in Paris",
    "naïve résumé façade", "Ångström über straße", "😀 a smiling face", "👍 thumbs up", "❤ love",
    "Привет мир", "привет кошка", "γεια σου κόσμε", "123 456 7890", "2019 2020 2021", "www example com",
    "hello world!", "it's a dog's life", "(a) [b] {c}", "x = y + 1", "50% off", "#1 best", "e-mail me",
    "full-width ＡＢＣ", "ｆｕｌｌ ｗｉｄｔｈ", "tab\tseparated", "new\nline", "multiple   spaces",
]

UNKNOWN_CJK = "龍鳳麒麟饕餮魑魅魍魎"   # never in training


def held_out_strings():
    s = [
        "", " ", "   ", "\t", "\n", "\r\n", " \t\n ", "a", " a", "a ", "  a  ", "a red circle on the left",
        "A man riding a horse on a beach.", "two giraffes standing next to a tall tree",
        # whitespace runs and kinds
        "a  b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \t \n b", "   leading", "trailing   ",
        "\u3000ideographic space", "a\u3000b", "a\u00a0b", "\u00a0", "a\u2002b\u2003c", "a\u200bb", "\u200b",
        "a \u3000 b", "\u2581", "\u2581\u2581a", "a\u2581b", "_a_", "\u2581 \u2581",
        # control characters (nmt_nfkc deletes many of them)
        "\x01", "a\x01b", "\x01\x02\x03", "a\x00b", "\x7f", "a\x7fb", "\x85", "a\x9fb", "\ufeffbom", "soft\u00adhyphen",
        "a\u200db", "a\u200eb\u200f", "\x1b[31mred\x1b[0m", "\x0b\x0c", "a\x0bb\x0cc",
        # accents and combining marks
        "café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m", "e\u0301\u0301\u0301",
        "a\u0308\u0301", "\u0301", " \u0301", "\u0301a", "zalgo z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o",
        "résumé façade über", "Straße", "ĳ", "ǅ",
        # compatibility forms (NFKC)
        "ﬁne ﬂower", "①②③", "Ⅻ", "㎏ ㎞", "ﷺ", "½ ¼ ¾", "x² y³", "ＡＢＣ１２３", "ｆｕｌｌ ｗｉｄｔｈ", "，。！？",
        "ｶﾀｶﾅ", "ﾞﾟ", "ｶﾞ", "™ ℃ №", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛", "¨", "a¨b", " ¨ ", "´", "a´b", "¸", "\u2126 \u212b",
        "\uff5e", "\u2024\u2025\u2026", "…", "……", "a…b", "...", "......",
        # CJK and other scripts
        "一只猫", "一只猫坐在桌子上", "中文字幕", "日本語のテキスト", "東京タワー", "한국어 텍스트", "ภาษาไทย",
        "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "Привет мир", "ΓΕΙΑ σου", "ქართული", "Ελληνικά",
        UNKNOWN_CJK, "a " + UNKNOWN_CJK + " b", "x" + UNKNOWN_CJK + "y", UNKNOWN_CJK[:2] + "猫" + UNKNOWN_CJK[2:4],
        "龍 鳳", "龍\u3000鳳", "龍\x01鳳", "龍\u0301",
        # emoji
        "😀", "😀😀😀", "a 😀 b", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵🇫🇷", "❤️", "1️⃣", "🏳️\u200d🌈", "🙂 <sep>",
        "\U0001F9D1\u200d\U0001F4BB",
        # digits and ties
        "555", "5555", "55555", "55", "0", "000", "2023-10-01", "3.14159", "1,000,000", "12:30pm", "#42",
        "www", "wwww", "www.example.com", "aaa", "aaaa", "zzzzzz", "!!!", "???", "---", "lll", "ooo", "sss",
        "mmm", "eee", "ttt", "nnnn",
        # punctuation, brackets, names of special pieces as plain text
        "hello, world!", "it's", "\"quoted\"", "(parens)", "[IMG] a dog", "<unk>", "</s>", "<pad>", "<s>", "<sep>",
        "a<sep>b", "<ctl>", "a <pad> b", "\\n", "C:\\path\\file", "https://x.y/z?q=1&r=2",
        # replacement char, non-characters, private use
        "\ufffd", "a\ufffdb", "\ue000", "\uffff", "\U0010fffd",
        # mixed case
        "HELLO World", "ÀÉÎÕÜ", "İstanbul", "ΣΊΣΥΦΟΣ",
    ]
    # long strings (2,000 characters)
    rng = random.Random(7)
    words = (make_spiece.MORE_NOUNS + make_spiece.MORE_VERBS + make_spiece.MORE_ADJ + ["a", "the", "of", "on"])
    text = ""
    while len(text) < 2000:
        text += rng.choice(words) + " "
    s.append(text[:2000])
    s.append("a" * 2000)
    s.append("5" * 2000)
    s.append(UNKNOWN_CJK[0] * 2000)
    s.append((" " * 7 + "dog") * 200)
    s.append("".join(rng.choice("猫犬 😀é\u0301ａ\t\n5w…") for _ in range(2000)))
    # random short strings over a pool of the hard characters
    pool = list("abcxyzw5 0.,!?'-\t\n\u3000\u00a0\u200b\x01\x7f") + list("éèü\u0301\u0308ﬁ①ＡＢｶﾞ…¨´") + \
        list("猫只中文字日本語") + list(UNKNOWN_CJK) + ["😀", "👍", "🏽", "\u200d", "❤", "\ufe0f", "\u2581"]
    for _ in range(400):
        s.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 24))))
    for _ in range(100):
        s.append(" ".join(rng.choice(words + ["555", "www", "…", UNKNOWN_CJK[:3], "😀", "ﬁ"])
                          for _ in range(rng.randint(1, 12))))
    # random code points from blocks the charsmap rewrites (compatibility, presentation and width forms, math
    # letters, CJK compatibility ideographs, Hangul, C0/C1 controls, format characters, emoji)
    blocks = [(0x0000, 0x024F), (0x0300, 0x036F), (0x0080, 0x00FF), (0x1100, 0x11FF), (0x2000, 0x206F),
              (0x2070, 0x218F), (0x2460, 0x24FF), (0x2E80, 0x2FDF), (0x3000, 0x33FF), (0xAC00, 0xAC80),
              (0xF900, 0xFAFF), (0xFB00, 0xFDFF), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF),
              (0x1F100, 0x1F1FF), (0x1F300, 0x1FAFF), (0xE0000, 0xE007F)]
    for _ in range(400):
        chars = []
        for _ in range(rng.randint(1, 16)):
            lo, hi = rng.choice(blocks)
            chars.append(chr(rng.randint(lo, hi)))
        s.append("".join(chars))
    return s


def train(prefix, lines, vocab_size, **extra):
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # relative names: the trainer records its input and prefix in the model
        try:
            with open("corpus.txt", "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            args = dict(input="corpus.txt", model_prefix="m", model_type="unigram", vocab_size=vocab_size,
                        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
                        unk_piece="<unk>", character_coverage=1.0, num_threads=1, shuffle_input_sentence=False,
                        input_sentence_size=0, byte_fallback=False, hard_vocab_limit=False, minloglevel=2)
            args.update(extra)
            spm.SentencePieceTrainer.train(**args)
            with open("m.model", "rb") as src:
                model = src.read()
        finally:
            os.chdir(cwd)
    with open(os.path.join(HERE, prefix + ".model"), "wb") as dst:
        dst.write(model)


def decode_cases(sp, strings):
    """Id sequences for decode alone: special ids (pad, eos, unk, controls) before, between and after text."""
    n = sp.get_piece_size()
    specials = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    rng = random.Random(11)
    cases = [[], [0], [1], [2], [0, 1], [2, 2], [0, 2, 1]]
    for text in ["a red circle", "  two dogs", "www 555", "a\u3000b", "\u2581\u2581a"]:
        ids = sp.encode(text)
        cases += [[0] + ids, [2] + ids, ids + [1], [0, 0] + ids + [1, 0], ids[:1] + [2] + ids[1:], [1, 2] + ids]
    for _ in range(200):
        cases.append([rng.choice(specials) if rng.random() < 0.3 else rng.randrange(n)
                      for _ in range(rng.randint(1, 12))])
    return [{"ids": c, "decode": sp.decode(c)} for c in cases]


def main():
    rng = random.Random(0)
    captions = []
    for _ in range(60000):
        r = rng.random()
        captions.append(make_spiece.shape_caption(rng) if r < 0.25 else make_spiece.scene_caption(rng)
                        if r < 0.6 else make_spiece.extra_caption(rng))
    hard = TRAIN_HARD * 20
    train("t5_oracle_unigram", captions + hard, 1500, normalization_rule_name="nmt_nfkc")
    train("variant_udsym_nfkc_cf", captions[:20000] + hard, 800, normalization_rule_name="nfkc_cf",
          remove_extra_whitespaces=False, user_defined_symbols=["<sep>", "[IMG]", "🙂", "ab"],
          control_symbols=["<ctl>"], unk_surface="<?>")
    train("variant_identity", captions[:20000] + hard, 800, normalization_rule_name="identity",
          add_dummy_prefix=False)

    strings = held_out_strings()
    with open(os.path.join(HERE, "oracle_strings.json"), "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=True, indent=0)
    for name in ["t5_oracle_unigram", "variant_udsym_nfkc_cf", "variant_identity", "t5_style_unigram"]:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, name + ".model"))
        expected = []
        for text in strings:
            ids = sp.encode(text)
            expected.append({"ids": ids, "pieces": sp.encode(text, out_type=str), "decode": sp.decode(ids)})
        with open(os.path.join(HERE, f"expected_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, ensure_ascii=True, separators=(",", ":"))
        with open(os.path.join(HERE, f"decode_cases_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(decode_cases(sp, strings), f, ensure_ascii=True, separators=(",", ":"))
        unk = sum(1 for e in expected if sp.unk_id() in e["ids"])
        print(f"{name}: {sp.get_piece_size()} pieces, {len(strings)} strings ({unk} with <unk>)")


if __name__ == "__main__":
    main()
