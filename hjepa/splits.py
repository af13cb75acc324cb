"""Start/goal pairs with roles: `val` pairs for every choice, `test` pairs for every figure.

Every closed-loop evaluation draws its start/goal pairs (and planner keys) from one seed. A
recipe, a planner setting, a training length or a temperature is chosen on the `val` pairs;
every reported figure is measured on the `test` pairs, whose seed was never used for a
choice. The seeds are fixed here, once, so that every script, the CLI and the tests agree.

History: every figure before the split existed, and every choice made for it, used seed
10000 (some choices also 20000 and 30000), so 10000 is the `val` seed now; the `test` seed
424242 had never been used.

Example:
  >>> from hjepa import splits
  >>> splits.seed("test")
  424242
  >>> key = splits.key("val")   # jax.random.key(10000)
"""

from __future__ import annotations

SEEDS = {"val": 10_000, "test": 424_242}
SPLITS = tuple(SEEDS)
# Practice pairs (distillation's labelling episodes, `hjepa.distill`): never evaluated on.
PRACTICE_SEED = 5_150


def seed(split: str) -> int:
    """The seed of the start/goal pairs of `split` ("val" or "test")."""
    if split not in SEEDS:
        raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
    return SEEDS[split]


def key(split: str):
    """`jax.random.key(seed(split))`: the key an evaluation on `split` starts from."""
    import jax

    return jax.random.key(seed(split))


def practice_key(round_index: int = 0):
    """The key of the practice start/goal pairs of one distillation round (never a `val` or
    `test` pair's seed)."""
    import jax

    return jax.random.fold_in(jax.random.key(PRACTICE_SEED), round_index)


def describe(split: str | None, seed_value: int) -> dict:
    """What a results file records about its pairs: {"split": ..., "seed": ...}.

    A seed that is not a split's is recorded with split None (a custom set of pairs)."""
    if split is None:
        split = next((name for name, value in SEEDS.items() if value == seed_value), None)
    return {"split": split, "seed": int(seed_value)}
