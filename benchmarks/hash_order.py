"""Benchmark: how often `nb2pipe verify` can still be misled by the order of a set of strings.
Prints figures; asserts nothing.

verify runs the pipeline under its process's string hash seed S, the first notebook run under
S and the second under S + 1 (nb2pipe/execute/hash_seed.py). A value made from a set's order in
the step that builds the set is the first run's in the pipeline. A set handed to another step
is pickled and rebuilt there, and the rebuilt set may lay its strings out otherwise: a value
made from its order then differs from the first run's, and verify takes that for a divergence
unless the second run's order differs too (then the value is left out). For random sets of N
short strings and many seeds, each in a Python process of its own, this prints:

    rebuilt otherwise    the rebuilt set iterates otherwise than the set (same seed)
    runs agree           S and S + 1 order the set alike
    false alarm          both: the residual rate of a false divergence, per set handed over
    before (random)      the same without fixed seeds: two notebook runs agree by chance and
                         the pipeline (another random seed) differs, rebuilt or not

    python benchmarks/hash_order.py [--seeds 40] [--sets 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SIZES = (2, 3, 5, 10)

# In a process under one seed: each set's order, and its order once pickled and rebuilt.
ORDERS = """
import json, pickle, random, string, sys
rng = random.Random(int(sys.argv[1]))
found = {}
for size in map(int, sys.argv[2].split(",")):
    rows = []
    for _ in range(int(sys.argv[3])):
        words = set()
        while len(words) < size:
            words.add("".join(rng.choices(string.ascii_letters, k=rng.randint(1, 8))))
        built = set(sorted(words))
        rows.append([list(built), list(pickle.loads(pickle.dumps(built, protocol=5)))])
    found[size] = rows
print(json.dumps(found))
"""


def orders(seed: int, sets: int) -> dict[str, list[list[list[str]]]]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run([sys.executable, "-c", ORDERS, "0", ",".join(map(str, SIZES)),
                           str(sets)], env=env, capture_output=True, text=True, check=True)
    found: dict[str, list[list[list[str]]]] = json.loads(done.stdout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--sets", type=int, default=2000)
    options = parser.parse_args()
    by_seed = [orders(seed, options.sets) for seed in range(1, options.seeds + 2)]
    print(f"{options.seeds} seed pairs (S, S + 1) x {options.sets} sets of random strings")
    print(f"{'strings':>8} {'rebuilt otherwise':>18} {'runs agree':>11} {'false alarm':>12} "
          f"{'before (random)':>16}")
    for size in map(str, SIZES):
        total = rebuilt = agree = alarm = before = 0
        for index in range(options.seeds):
            mine, other = by_seed[index][size], by_seed[index + 1][size]
            third = by_seed[(index + 2) % len(by_seed)][size]
            for (order, again), (order2, _), (_, again3) in zip(mine, other, third,
                                                                     strict=True):
                total += 1
                rebuilt += again != order
                agree += order2 == order
                alarm += again != order and order2 == order
                # random seeds: runs under seeds i and i + 1 agree, the pipeline under i + 2
                # (its rebuilt set) differs
                before += order2 == order and again3 != order
        print(f"{size:>8} {rebuilt / total:>18.2%} {agree / total:>11.2%} "
              f"{alarm / total:>12.2%} {before / total:>16.2%}")


if __name__ == "__main__":
    main()
