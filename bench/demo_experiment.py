"""The demo experiment's true effect (the generator's counterfactual worlds) against what it measures.

    python bench/demo_experiment.py [--entries 200000] [--seed 42]
"""

from __future__ import annotations

import argparse

from analytics.demo.experiment_truth import true_effect
from analytics.migrations import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    truth = true_effect(connect, entries=args.entries, seed=args.seed)
    m = truth["measured"]
    arms = {a["arm"]: a for a in m["arms"]}
    c = m["comparison"]
    print(f"{args.entries:,} entries, seed {args.seed}: {m['name']}")
    print(f"  all-champion world {truth['champion_world']:.2%}, all-challenger world {truth['challenger_world']:.2%}: "
          f"true effect {truth['true_effect'] * 100:+.1f} points")
    for arm in ("champion", "challenger"):
        a = arms[arm]
        print(f"  {arm}: {a['customers']:,} customers measured, {a['ratio']:.1%} [{a['low']:.1%}, {a['high']:.1%}]")
    print(f"  measured difference {c['difference'] * 100:+.1f} points, 95% CI [{c['difference_low'] * 100:+.1f}, "
          f"{c['difference_high'] * 100:+.1f}]; verdict: {m['verdict']['reason']}")


if __name__ == "__main__":
    main()
