"""What seed 000 (MLP homework, Q5: super-resolution with an MLP) printed, and where ours is.

Pure data; the claim grammar is in pipeline/scorecard/claims.py. The report printed its setting
and sample counts but no PSNR or SSIM: those rows compare ours with bicubic interpolation.
"""

SEED = {
    "images": "10 CIFAR-10 images, 32x32 px",
    "samples": {"all": 10240, "train": 7168, "test": 2048, "validation": 1024},
    "network": "27 -> 64 -> 128 -> 3, ReLU, MSE, Adam, 50 epochs",
    "metrics": "PSNR and SSIM asked for; no values printed in the extracted text",
}

EXPERIMENT = {
    "title": "Super-resolution with an MLP",
    "seed": "seed 000 — MLP homework (Amirkabir Univ., HW2), Q5",
    "needs": "",
}

_EVAL = "metrics/superres/eval.json"
_OTHER_IMAGES = ("ours: ten 128 px photographs, one sample per high-res pixel (superres.images: cifar10:0 … "
                 "cifar10:9 with size 32 is the seed's setting)")

CLAIMS = [
    *({"item": f"literal network: {split} samples", "seed": SEED["samples"][split], "kind": "setting",
       "ours": f"metrics/superres/literal.json:{key}_samples", "note": _OTHER_IMAGES}
      for split, key in (("train", "train"), ("test", "test"), ("validation", "val"))),
    *({"item": f"2× {name}: {label}, held-out photographs", "seed": None, "kind": "ours", "digits": digits,
       "unit": unit, "ours": f"{_EVAL}:x2.{variant}.holdout_{metric}",
       "baseline": f"{_EVAL}:x2.bicubic.holdout_{metric}", "baseline_label": "bicubic"}
      for variant, label in (("refine", "each channel's 5×5 → a correction to bicubic"),
                             ("subpixel", "the better MLP (27 → 12)"), ("literal", "the report's MLP (27 → 3)"))
      for metric, name, digits, unit in (("psnr", "PSNR", 2, "dB"), ("ssim", "SSIM", 3, ""))),
    {"item": "4× PSNR: the 2× network twice, held-out photographs", "seed": None, "kind": "ours", "digits": 2,
     "unit": "dB", "ours": f"{_EVAL}:x4.subpixel x2 twice.holdout_psnr",
     "baseline": f"{_EVAL}:x4.subpixel4x.holdout_psnr", "baseline_label": "a network trained for 4×"},
    {"item": "4× PSNR: a network trained for 4×, held-out photographs", "seed": None, "kind": "ours", "digits": 2,
     "unit": "dB", "ours": f"{_EVAL}:x4.subpixel4x.holdout_psnr",
     "baseline": f"{_EVAL}:x4.bicubic.holdout_psnr", "baseline_label": "bicubic"},
]
