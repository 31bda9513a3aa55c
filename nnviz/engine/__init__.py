"""The engine: models, initializers, data sets, seeding, the training loop, the recorder and the
LR range test. Everything that builds or trains a network lives here."""
