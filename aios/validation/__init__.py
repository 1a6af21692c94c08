"""Cross-model validation: `compare` judges two answers (pure), `matrix` folds every run of every target
into the verdicts `aios validate` stores and shows."""
