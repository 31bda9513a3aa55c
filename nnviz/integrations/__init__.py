"""Optional integrations (extras): a Lightning Callback and a Hugging Face TrainerCallback that
record training through ``nnviz.engine.watch``. Each module imports its framework on import."""
