"""`ardesk report aging|dso|kpis|bad-debt|roll-rates|dunning|collectors`: the numbers the pages show.

Every report takes the customer filters (--segment, --collector, --country, --currency,
--customer, --attribute NAME=VALUE; each repeatable: values of one filter are "any of", different
filters must all match) and --format table|csv|json. Point-in-time reports take --as-of
(default: the last posting date in the ledger); series take --start/--end (default: the 12 months
ending at the last posting date).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

import pandas as pd

from analytics.cli.output import UserError, emit
from analytics.kpis.aging import aging_buckets
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.collector_kpis import collector_kpis
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.kpis.summary import kpi_summary
from analytics.ledger.customer_attributes import attribute_name, attribute_summary
from analytics.ledger.filters import Filters
from analytics.ledger.months import add_months
from analytics.ledger.open_items import ledger_bounds
from analytics.migrations import connect
from analytics.store.connection import Store

REPORTS = ("aging", "dso", "kpis", "bad-debt", "roll-rates", "dunning", "collectors")


def _add_common(p: argparse.ArgumentParser, *, point: bool) -> None:
    if point:
        p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="report date (default: last posting date in the ledger)")
    else:
        p.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="first day (default: 11 months before --end, from the 1st)")
        p.add_argument("--end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="last day (default: last posting date in the ledger)")
    for name, helptext in (("segment", "customer segment"), ("collector", "collector username"),
                           ("country", "country code"), ("currency", "customer currency"),
                           ("customer", "customer id")):
        p.add_argument(f"--{name}", action="append", metavar="VALUE", help=f"only this {helptext} (repeatable)")
    p.add_argument("--attribute", action="append", metavar="NAME=VALUE",
                   help="only customers whose attribute NAME (an extra column of the customers file, see "
                        "`ardesk db info`) is VALUE (repeatable)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="print a KPI report (aging, DSO, KPIs, bad debt, roll rates, dunning, collectors)",
                       description=__doc__.split("\n\n", 1)[1])
    reports = p.add_subparsers(dest="report", metavar="REPORT", required=True)
    aging = reports.add_parser("aging", help="AR aging buckets as of a date")
    _add_common(aging, point=True)
    aging.add_argument("--by", choices=("total", "customer", "segment", "collector", "country", "currency"),
                       default="total")
    aging.add_argument("--basis", choices=("due", "invoice"), default="due",
                       help="age by days past due (default) or by invoice date")
    aging.set_defaults(handler=_aging)
    kpis = reports.add_parser("kpis", help="headline KPIs as of a date and the previous month end")
    _add_common(kpis, point=True)
    kpis.set_defaults(handler=_kpis)
    for name, helptext in (("dso", "monthly DSO (standard, countback), BPDSO, ADD, CEI, % over 90"),
                           ("bad-debt", "write-offs and bad debt %, monthly and rolling 12 months"),
                           ("roll-rates", "share of each bucket rolling one bucket older each month end"),
                           ("dunning", "dunning effectiveness per configuration, version and stage"),
                           ("collectors", "collector KPIs over a period")):
        r = reports.add_parser(name, help=helptext.replace("%", "%%"))
        _add_common(r, point=False)
        r.set_defaults(handler=_series(name))


def filters_from(args: argparse.Namespace, store: Store | None = None) -> Filters:
    """The customer filters of the command line; with `store`, an attribute it does not have is an error."""
    attributes: dict[str, list[str]] = {}
    for pair in getattr(args, "attribute", None) or []:
        raw_name, sep, value = pair.partition("=")
        name = attribute_name(raw_name)
        if not sep or name is None or not value.strip():
            raise UserError(f"--attribute {pair!r}: write it as NAME=VALUE, e.g. --attribute industry=Retail.")
        attributes.setdefault(name, []).append(value.strip())
    if attributes and store is not None:
        known = set(attribute_summary(store)["name"])
        unknown = sorted(set(attributes) - known)
        if unknown:
            raise UserError(f"No customer attribute {', '.join(unknown)} in this store "
                            f"(attributes: {', '.join(sorted(known)) or 'none'}).")
    return Filters(segment=args.segment, collector=args.collector, country=args.country,
                   currency=args.currency, customer_id=args.customer, attributes=attributes)


def _last_posting(store: Store) -> date:
    _, last = ledger_bounds(store)
    if last is None:
        raise UserError("The ledger is empty: give --as-of/--end, or load data first (`ardesk demo`).")
    return last


def _emit(frame: pd.DataFrame, fmt: str) -> int:
    emit(frame, fmt)
    return 0


def _aging(args: argparse.Namespace) -> int:
    store = connect(args.db)
    as_of = args.as_of or _last_posting(store)
    return _emit(aging_buckets(store, as_of, filters_from(args, store), by=args.by, basis=args.basis), args.format)


def _kpis(args: argparse.Namespace) -> int:
    store = connect(args.db)
    as_of = args.as_of or _last_posting(store)
    return _emit(kpi_summary(store, as_of, filters_from(args, store)), args.format)


def _series(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        functions = {"dso": dso_monthly, "bad-debt": bad_debt_monthly, "roll-rates": roll_rates,
                     "dunning": dunning_effectiveness, "collectors": collector_kpis}
        store = connect(args.db)
        end = args.end or _last_posting(store)
        start = args.start or add_months(end, -11)
        if start > end:
            raise UserError(f"--start {start} is after --end {end}.")
        return _emit(functions[name](store, start, end, filters_from(args, store)), args.format)

    return run
