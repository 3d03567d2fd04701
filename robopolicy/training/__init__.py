"""Training loop: AdamW + cosine warmup schedule, EMA weights, policy-directory checkpoints."""
