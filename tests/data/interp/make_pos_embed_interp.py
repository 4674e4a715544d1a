"""Oracle for PositionEmbeddingInterpolation: LAVIS interpolate_pos_embed (eva_vit.py) on small inputs.

Run with Debian's torch: /usr/bin/python3 tests/data/interp/make_pos_embed_interp.py
Writes pos_embed_interp.safetensors beside this script (float32, exact bits; no safetensors package needed).
"""
import json, os, struct
import torch
import torch.nn.functional as F


def interpolate_pos_embed(pos_embed, new_size):
    # Same steps as LAVIS: class token kept, patch grid resized bicubic with align_corners=False.
    pos_embed = pos_embed.float()
    d = pos_embed.shape[-1]
    g = int((pos_embed.shape[-2] - 1) ** 0.5)
    extra, tokens = pos_embed[:, :1], pos_embed[:, 1:]
    tokens = tokens.reshape(-1, g, g, d).permute(0, 3, 1, 2)
    tokens = F.interpolate(tokens, size=(new_size, new_size), mode="bicubic", align_corners=False)
    tokens = tokens.permute(0, 2, 3, 1).flatten(1, 2)
    return torch.cat((extra, tokens), dim=1)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


torch.manual_seed(0)
small = torch.randn(1, 1 + 4 * 4, 6)          # g=4, D=6
blip = torch.randn(1, 1 + 16 * 16, 3)         # BLIP-2's 224 -> 364 px ratio (g=16 -> 26), small D
out = {
    "small": small,
    "small_to_6": interpolate_pos_embed(small, 6),
    "small_to_3": interpolate_pos_embed(small, 3),
    "blip": blip,
    "blip_to_26": interpolate_pos_embed(blip, 26),
}
here = os.path.dirname(os.path.abspath(__file__))
write_safetensors(os.path.join(here, "pos_embed_interp.safetensors"), out)
for k, v in out.items():
    print(k, tuple(v.shape))
