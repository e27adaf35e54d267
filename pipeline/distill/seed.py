"""Seed 002 practical 3 (distillation, ResNet-50 to MobileNetV2 on CIFAR-10): the extracted report
printed no numbers, so the rows are ours alone, each student held against the one it should beat.

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

EXPERIMENT = {
    "title": "Knowledge distillation: ResNet-50 to MobileNetV2 on CIFAR-10",
    "seed": "seed 002 — CNN homework (Sharif Univ.), practical 3",
    "needs": "CIFAR-10 and the ImageNet ResNet-50 weights (the network, or cifar10.source); a GPU for full scale",
}

_PCT = {"seed": None, "kind": "ours", "digits": 2, "unit": "%", "scale": 100}
_M = "metrics/distill"

CLAIMS = [
    {"item": "(a) teacher, last layer trained: test accuracy", "ours": f"{_M}/teacher.json:test_accuracy", **_PCT},
    {"item": "(b) MobileNetV2 distilled: test accuracy", "ours": f"{_M}/student.json:test_accuracy", **_PCT,
     "baseline": f"{_M}/scratch.json:test_accuracy", "baseline_label": "the same net without a teacher"},
    {"item": "(c) MobileNetV2 without a teacher: test accuracy", "ours": f"{_M}/scratch.json:test_accuracy", **_PCT},
    {"item": "(d) ResNet-50 fine-tuned whole: test accuracy", "ours": f"{_M}/finetune.json:test_accuracy", **_PCT,
     "baseline": f"{_M}/teacher.json:test_accuracy", "baseline_label": "the last-layer teacher"},
    {"item": "(e) MobileNetV2 distilled from (d): test accuracy", "ours": f"{_M}/student_d.json:test_accuracy", **_PCT,
     "baseline": f"{_M}/student.json:test_accuracy", "baseline_label": "the student of the last-layer teacher (b)"},
]
