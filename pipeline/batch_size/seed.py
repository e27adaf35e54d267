"""Seed 000 Q2 (batch size): the report printed curves, not numbers; its claim was that smaller
batches converge faster per epoch, and its answer to "a batch of 2 does not fit" was a smaller
batch, where gradient accumulation is the answer. Where ours is, for the scorecard.

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

EXPERIMENT = {
    "title": "Batch size, and training a batch that does not fit",
    "seed": "seed 000 — MLP homework (Amirkabir Univ., HW2), Q2",
    "needs": "MNIST (the network, or mnist.source; offline, Debian's Fashion-MNIST — see README)",
    "expects": {"mnist.dataset": "mnist"},
}

_SIZES = (64, 256, 1024)

CLAIMS = [
    {"item": "test accuracy after one epoch, batch 64 / 256 / 1024", "seed": "falls as the batch grows",
     "kind": "descending", "digits": 1, "unit": "%", "scale": 100,
     "ours": [f"plots/batch_size/{b}.csv:test_accuracy@epoch=1" for b in _SIZES],
     "note": "the report's figures 7–8: smaller batches converge faster per epoch"},
    *({"item": f"batch {b}: final test accuracy", "seed": None, "kind": "ours", "digits": 1, "unit": "%", "scale": 100,
       "ours": f"metrics/batch_size/{b}.json:test_accuracy"} for b in _SIZES),
    {"item": "accumulated vs whole-batch gradient, float64 relative difference", "seed": None, "kind": "ours",
     "ours": "metrics/batch_size/accumulation.json:gradient.float64.relative",
     "note": "the report answered 'use a smaller batch'; micro-batches whose gradients add up are the answer"},
]
