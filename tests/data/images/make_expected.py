"""Oracle for src/Model/Data image transforms (issue 12, item 4).

Run with Debian's python3 (PIL 9.4, numpy 1.24, torch 1.13; `apt-get install python3-opencv` (4.6) for LAVIS's
RandomAugment ops), against a LAVIS checkout (made with salesforce/LAVIS 506965b9c4a18c1e565bd32acaccabe0198433f7):

    /usr/bin/python3 tests/data/images/make_expected.py --lavis /path/to/LAVIS

It writes small PNG inputs of odd sizes and expected.json: uint8 outputs (HWC RGB, base64) of
  - torchvision's PIL path of Resize((S, S), BICUBIC) = PIL Image.resize(..., BICUBIC) (antialiased),
  - F.resized_crop = img.crop((left, top, left + w, top + h)).resize((S, S), BICUBIC),
  - F.hflip = ImageOps.mirror,
  - LAVIS's RandomAugment ops (lavis/processors/randaugment.py, loaded from the checkout given by --lavis, not
    copied) with fixed parameters, and PIL's ImageOps.autocontrast / equalize,
and the float32 CHW output of ToTensor + Normalize(BLIP's CLIP mean/std) as torchvision computes it
(x.float().div(255), then (x - mean) / std in float32).
"""
import argparse, base64, importlib.util, json, os
import numpy as np
import torch
from PIL import Image, ImageOps

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--lavis", required=True, help="a LAVIS checkout (for lavis/processors/randaugment.py)")
args = ap.parse_args()
spec = importlib.util.spec_from_file_location("randaugment", os.path.join(args.lavis, "lavis/processors/randaugment.py"))
ra = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ra)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
rng = np.random.default_rng(12)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def make_image(w, h, seed):
    # Smooth gradients plus noise and a hard edge: exercises the filter's negative lobes and clipping.
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 127 + 120 * np.sin(x * 0.7 + y * 0.3)], -1)
    img += r.normal(0, 25, img.shape)
    img[h // 3: h // 2, w // 4: w // 2] = (250, 5, 128)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


images = {"a_61x47.png": (61, 47, 1), "b_13x9.png": (13, 9, 2), "c_50x50.png": (50, 50, 3), "d_200x31.png": (200, 31, 4)}
out = {"mean": MEAN, "std": STD, "images": [], "ops": []}
for name, (w, h, seed) in images.items():
    arr = make_image(w, h, seed)
    Image.fromarray(arr, "RGB").save(os.path.join(here, name), optimize=True)
    im = Image.open(os.path.join(here, name)).convert("RGB")
    assert (np.array(im) == arr).all()
    entry = {"file": name, "width": w, "height": h, "resize": {}, "crops": []}
    for s in (24, 7):
        entry["resize"][str(s)] = b64(np.array(im.resize((s, s), Image.BICUBIC)))
    # (top, left, height, width) as torchvision's get_params returns them, then resized to 24.
    for _ in range(3):
        ch = int(rng.integers(1, h + 1)); cw = int(rng.integers(1, w + 1))
        top = int(rng.integers(0, h - ch + 1)); left = int(rng.integers(0, w - cw + 1))
        crop = im.crop((left, top, left + cw, top + ch)).resize((24, 24), Image.BICUBIC)
        entry["crops"].append({"top": top, "left": left, "height": ch, "width": cw, "size": 24, "pixels": b64(np.array(crop))})
    entry["hflip"] = b64(np.array(ImageOps.mirror(im)))
    x = torch.from_numpy(np.array(im.resize((24, 24), Image.BICUBIC))).permute(2, 0, 1).contiguous().float().div(255)
    x = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    entry["normalized_24"] = b64(x.numpy().astype(np.float32))
    out["images"].append(entry)

# Op inputs: a 24x24 resize of image a (channel minima > 0) and one with every channel's minimum at 0.
base = np.array(Image.open(os.path.join(here, "a_61x47.png")).convert("RGB").resize((24, 24), Image.BICUBIC))
zero = base.copy(); zero[0, 0] = 0; zero[5, 7] = 255
dim = (base // 3 + 40).astype(np.uint8)  # a narrow range, so autocontrast and equalize change much
out["op_inputs"] = {"base": b64(base), "zero_min": b64(zero), "dim": b64(dim)}


def op(name, input_name, params, result, source):
    out["ops"].append({"op": name, "input": input_name, "params": params, "source": source, "pixels": b64(result)})


inputs = {"base": base, "zero_min": zero, "dim": dim}
fill = (128, 128, 128)
for key, img in inputs.items():
    op("Identity", key, [], ra.identity_func(img), "lavis")
    op("Equalize", key, [], ra.equalize_func(img), "lavis")
    pil_eq = np.array(ImageOps.equalize(Image.fromarray(img)))
    assert (pil_eq == ra.equalize_func(img)).all(), "LAVIS equalize differs from PIL"
    op("AutoContrast", key, [], np.array(ImageOps.autocontrast(Image.fromarray(img))), "pil")
    if img.reshape(-1, 3).min(0).min() > 0:
        # Where a channel's minimum is above 0, LAVIS's version saturates it (documented; we follow PIL).
        assert (ra.autocontrast_func(img) != np.array(ImageOps.autocontrast(Image.fromarray(img)))).any()
    if img.reshape(-1, 3).min(0).max() == 0:
        # LAVIS's numpy version negates a uint8 minimum (wraps): it agrees with PIL only where every channel's minimum is 0.
        assert (ra.autocontrast_func(img) == np.array(ImageOps.autocontrast(Image.fromarray(img)))).all()
    if key == "zero_min":
        continue
    for f in (1.0, 0.1, 0.55, 1.45, 1.9):
        op("Brightness", key, [f], ra.brightness_func(img, f), "lavis")
    # Factors above 1 extrapolate past 0..255, where LAVIS's astype(np.uint8) wraps and ours clips (as PIL): not compared.
    for f in (1.0, 0.0, 0.1, 0.55):
        op("Sharpness", key, [f], ra.sharpness_func(img, f), "lavis")
    if key != "base":
        continue
    for v in (0.15, -0.15, 0.03):
        op("ShearX", key, [v], ra.shear_x_func(img, v, fill), "lavis")
        op("ShearY", key, [v], ra.shear_y_func(img, v, fill), "lavis")
    for v in (5.0, -5.0, 1.0, 2.5):
        op("TranslateX", key, [v], ra.translate_x_func(img, v, fill), "lavis")
        op("TranslateY", key, [v], ra.translate_y_func(img, v, fill), "lavis")
    for v in (15.0, -15.0, 3.0):
        op("Rotate", key, [v], ra.rotate_func(img, v, fill), "lavis")
# An odd, non-square op input: rotation centre and shear origins must not assume a square.
odd = np.array(Image.open(os.path.join(here, "b_13x9.png")).convert("RGB"))
out["op_inputs"]["odd"] = b64(odd); out["op_input_sizes"] = {"base": [24, 24], "zero_min": [24, 24], "dim": [24, 24], "odd": [9, 13]}
for v in (15.0, -15.0):
    op("Rotate", "odd", [v], ra.rotate_func(odd, v, fill), "lavis")
op("ShearX", "odd", [0.15], ra.shear_x_func(odd, 0.15, fill), "lavis")
op("ShearY", "odd", [-0.15], ra.shear_y_func(odd, -0.15, fill), "lavis")
op("TranslateY", "odd", [5.0], ra.translate_y_func(odd, 5.0, fill), "lavis")
op("Sharpness", "odd", [0.55], ra.sharpness_func(odd, 0.55), "lavis")

with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(out, f)
print(len(out["ops"]), "ops;", sum(os.path.getsize(os.path.join(here, n)) for n in images), "bytes of PNG;",
      os.path.getsize(os.path.join(here, "expected.json")), "bytes of JSON")
