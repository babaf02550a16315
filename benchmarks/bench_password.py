"""Password policy and hashing benchmarks (placeholder until filled)."""
