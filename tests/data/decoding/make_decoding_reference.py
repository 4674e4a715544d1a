# HF parity reference for the decoding options of issue 12 (repetition_penalty, length_penalty, min_length,
# early_stopping) on the tiny T5 fixtures. Needs transformers (run it where the fixtures were made, e.g. the GPU
# machine): python3 make_decoding_reference.py /path/to/fixtures/hf tests/data/decoding/reference.json
# DecodingHfParityTests compares Seq2SeqGeneration with the file once it exists (skipped until then).
import json, sys, torch, transformers
from transformers import T5ForConditionalGeneration

fixtures, out = sys.argv[1], sys.argv[2]
CASES = [
    dict(num_beams=3, num_return_sequences=3, repetition_penalty=1.3),
    dict(num_beams=4, num_return_sequences=2, length_penalty=2.5),
    dict(num_beams=4, num_return_sequences=2, length_penalty=-1.0, min_length=5),
    dict(num_beams=3, num_return_sequences=3, repetition_penalty=0.7, length_penalty=0.6, min_length=4, early_stopping="never"),
    dict(num_beams=4, num_return_sequences=4, repetition_penalty=1.15, length_penalty=0.0, min_length=3),
    dict(num_beams=1, repetition_penalty=1.5, min_length=4),
]
def tl(t): return t.detach().cpu().tolist()
result = {"transformers": transformers.__version__, "torch": torch.__version__, "max_new_tokens": 8, "cases": []}
for name in ["t5_v11_untied", "t5_relu_tied"]:
    d = f"{fixtures}/{name}"
    ref = json.load(open(f"{d}/reference.json"))
    m = T5ForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32).eval()
    ids, attn = torch.tensor(ref["input_ids"]), torch.tensor(ref["attention_mask"])
    for case in CASES:
        with torch.no_grad():
            g = m.generate(input_ids=ids, attention_mask=attn, max_new_tokens=8, do_sample=False, output_scores=True,
                           return_dict_in_generate=True, **case)
        beams = case["num_beams"] > 1
        row = {"model": name, "options": case, "sequences": tl(g.sequences)}
        if beams:
            row["sequences_scores"] = tl(g.sequences_scores)
            row["transition_scores"] = tl(m.compute_transition_scores(g.sequences, g.scores, g.beam_indices, normalize_logits=False))
        else:
            row["transition_scores"] = tl(m.compute_transition_scores(g.sequences, g.scores, normalize_logits=True))
        result["cases"].append(row)
json.dump(result, open(out, "w"), indent=1)
print("wrote", out, len(result["cases"]), "cases")
