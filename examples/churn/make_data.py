"""Generate the synthetic customer-churn data set used by churn.ipynb.

Run once from this directory (``python make_data.py``); the output,
``data/customers.csv``, is committed so the notebook never downloads anything.
The generator is deterministic: the same seed always gives the same file.

Churn is drawn from a logistic model of the other columns (month-to-month
contracts, short tenure, high charges, fiber internet, electronic checks,
support calls and senior customers all raise the risk), so the notebook's
models have a real signal to learn. Like real exports, the file has gaps:
``total_charges`` is blank for brand-new customers (tenure 0) and for a few
others, and a handful of rows lack ``contract`` or ``payment_method``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611
N_CUSTOMERS = 3000
OUT = Path(__file__).resolve().parent / "data" / "customers.csv"


def make_customers(n=N_CUSTOMERS, seed=SEED):
    rng = np.random.default_rng(seed)

    contract = rng.choice(
        ["month-to-month", "one-year", "two-year"], size=n, p=[0.55, 0.21, 0.24]
    )
    # longer contracts go with longer tenure; month-to-month has many new customers
    tenure = np.where(
        contract == "month-to-month",
        rng.exponential(16, size=n),
        np.where(contract == "one-year", rng.uniform(6, 72, size=n), 72 - rng.exponential(18, size=n)),
    )
    tenure = np.clip(np.floor(tenure), 0, 72).astype(int)

    internet = rng.choice(["DSL", "Fiber optic", "No"], size=n, p=[0.34, 0.44, 0.22])
    base = np.select([internet == "DSL", internet == "Fiber optic"], [55.0, 85.0], default=20.5)
    spread = np.select([internet == "DSL", internet == "Fiber optic"], [12.0, 14.0], default=2.0)
    monthly = np.round(np.clip(rng.normal(base, spread), 18.25, 118.75), 2)

    # bills drift a little month to month, so the total is not exactly tenure * monthly
    total = np.round(tenure * monthly * rng.uniform(0.94, 1.06, size=n), 2)

    payment = rng.choice(
        ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"],
        size=n,
        p=[0.34, 0.23, 0.22, 0.21],
    )
    support_calls = rng.poisson(np.where(internet == "Fiber optic", 1.6, 0.9))
    senior = (rng.random(n) < 0.16).astype(int)

    logit = (
        -1.90
        + 1.25 * (contract == "month-to-month")
        - 1.10 * (contract == "two-year")
        - 0.032 * tenure
        + 0.012 * (monthly - 65.0)
        + 0.55 * (internet == "Fiber optic")
        - 0.45 * (internet == "No")
        + 0.50 * (payment == "Electronic check")
        + 0.38 * support_calls
        + 0.40 * senior
    )
    churn = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in rng.permutation(np.arange(10000, 10000 + n))],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "payment_method": payment,
            "internet_service": internet,
            "support_calls": support_calls,
            "senior": senior,
            "churn": churn,
        }
    )

    # gaps, applied after the label so they do not change who churns
    df.loc[df["tenure_months"] == 0, "total_charges"] = np.nan
    df.loc[rng.random(n) < 0.01, "total_charges"] = np.nan
    df["contract"] = df["contract"].astype(object)
    df.loc[rng.random(n) < 0.006, "contract"] = np.nan
    df["payment_method"] = df["payment_method"].astype(object)
    df.loc[rng.random(n) < 0.012, "payment_method"] = np.nan
    return df


def main():
    df = make_customers()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(OUT, index=False, float_format="%.2f", lineterminator="\n")
    print(
        f"wrote {len(df)} rows to {OUT.name}: churn rate {df['churn'].mean():.1%}, "
        f"{df['total_charges'].isna().sum()} blank total_charges, "
        f"{df['contract'].isna().sum()} missing contract, "
        f"{df['payment_method'].isna().sum()} missing payment_method"
    )


if __name__ == "__main__":
    main()
