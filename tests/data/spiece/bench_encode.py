#!/usr/bin/python3
"""Encode throughput of sentencepiece 0.1.97 and of SentencePieceTokenizer (`bench tokenize`) on the same strings.

Usage: /usr/bin/python3 tests/data/spiece/bench_encode.py HOST_DLL [MODEL] [STRINGS.json | captions]
  HOST_DLL  the built Scst.Host.dll (e.g. src/Host/bin/Release/net10.0/Scst.Host.dll)
  MODEL     default t5_oracle_unigram.model; STRINGS.json default oracle_strings.json; `captions` writes 2,000
            captions from make_spiece.py's generators (seed 3) to a temporary file and uses those
Both run single-threaded: each pass encodes every string (ids, no EOS), passes repeat until 0.5 s; best and median
of 5 passes. The figures are printed one after the other so they come from the same run on the same machine.
"""
import json
import os
import subprocess
import random
import sys
import tempfile
import time

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    host = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "t5_oracle_unigram.model")
    strings_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "oracle_strings.json")
    if strings_path == "captions":
        sys.path.insert(0, HERE)
        import make_spiece
        rng = random.Random(3)
        captions = [make_spiece.shape_caption(rng) if r < 0.25 else make_spiece.scene_caption(rng) if r < 0.6
                    else make_spiece.extra_caption(rng) for r in (rng.random() for _ in range(2000))]
        strings_path = os.path.join(tempfile.mkdtemp(), "captions.json")
        with open(strings_path, "w", encoding="utf-8") as f:
            json.dump(captions, f)
    strings = json.load(open(strings_path, encoding="utf-8"))
    sp = spm.SentencePieceProcessor(model_file=model)
    nbytes = sum(len(s.encode("utf-8")) for s in strings)
    for s in strings:
        sp.encode(s)
    print(f"{len(strings)} strings, {nbytes} UTF-8 bytes, model {os.path.basename(model)}")
    for what, one_pass in [("one encode(text) call per string", lambda: [sp.encode(s) for s in strings]),
                           ("one encode(list, num_threads=1) call", lambda: sp.encode(strings, num_threads=1))]:
        passes = []
        for _ in range(5):
            start, loops = time.perf_counter(), 0
            while True:
                one_pass()
                loops += 1
                if time.perf_counter() - start >= 0.5:
                    break
            passes.append((time.perf_counter() - start) / loops)
        passes.sort()
        best, median = passes[0], passes[len(passes) // 2]
        print(f"sentencepiece {spm.__version__} ({what}): best {len(strings) / best:.0f} strings/s "
              f"({nbytes / best / 1e6:.2f} MB/s), median {len(strings) / median:.0f} strings/s ({nbytes / median / 1e6:.2f} MB/s)")
    out = subprocess.run(["dotnet", host, "bench", "tokenize", "--tokenizer", model, "--file", strings_path],
                         check=True, capture_output=True, text=True).stdout
    print("SentencePieceTokenizer (C#): " + out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
