"""predict_digits was deleted (renamed while experimenting and never put back)."""

DELETE = ["predict_digits"]
