"""What seed 003 (autoencoder for classification, Univ. of Tehran HW1 Q3) printed, and where ours is.

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

# the training loss the report printed after each of its 10 epochs (its figure 8)
SEED_EPOCH_LOSSES = (0.0352, 0.0276, 0.0233, 0.0222, 0.0210, 0.0199, 0.0191, 0.0173, 0.0169, 0.0165)
SEED_TEST_ACCURACY = 0.93        # the classifier on the 30-d codes (Softmax before CrossEntropyLoss)

EXPERIMENT = {
    "title": "Autoencoder codes for classification (MNIST)",
    "seed": "seed 003 — autoencoder for classification (Univ. of Tehran, HW1 Q3)",
    "needs": "MNIST (the network, or mnist.source; offline, Debian's Fashion-MNIST — see README)",
    "expects": {"mnist.dataset": "mnist"},
}

CLAIMS = [
    *({"item": f"autoencoder training loss, epoch {e}", "seed": loss, "kind": "lower", "tol": 0.00005, "digits": 4,
       "ours": f"plots/autoencoder/autoencoder.csv:train_loss@epoch={e}"}
      for e, loss in enumerate(SEED_EPOCH_LOSSES, start=1)),
    {"item": "classifier test accuracy, the report's network (softmax twice)", "seed": 100 * SEED_TEST_ACCURACY,
     "kind": "higher", "tol": 0.5, "digits": 1, "unit": "%", "scale": 100,
     "ours": "metrics/autoencoder/classifier_literal.json:test_accuracy"},
    {"item": "classifier test accuracy, corrected (cross-entropy on logits)", "seed": 100 * SEED_TEST_ACCURACY,
     "kind": "higher", "tol": 0.5, "digits": 1, "unit": "%", "scale": 100,
     "ours": "metrics/autoencoder/classifier_logits.json:test_accuracy",
     "note": "the seed's 93 % came from the softmax-twice network"},
]
