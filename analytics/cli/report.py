"""`ardesk report aging|dso|kpis|bad-debt|roll-rates|dunning|collectors|provision|what-if|pack`: the numbers
the pages show.

Every report takes the customer filters (--segment, --collector, --sales-rep, --country, --currency,
--customer, --attribute NAME=VALUE; each repeatable: values of one filter are "any of", different
filters must all match) and --format table|csv|json. Point-in-time reports take --as-of
(default: the last posting date in the ledger); series take --start/--end (default: the 12 months
ending at the last posting date). `pack --month YYYY-MM` writes the monthly pack (PDF or Excel) to a file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError, emit
from analytics.kpis.aging import aging_buckets
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.collector_kpis import collector_kpis
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import (
    Population,
    comparison_warning,
    dunning_effectiveness,
    human_headers,
    like_for_like,
    populations,
)
from analytics.kpis.provision import DEFAULT_WINDOW_MONTHS, provision_at, provision_history
from analytics.kpis.summary import kpi_comparison, kpi_summary
from analytics.kpis.what_if import what_if
from analytics.ledger.customer_attributes import attribute_name, attribute_summary
from analytics.ledger.filters import Filters
from analytics.ledger.fx import reporting_params
from analytics.ledger.months import add_months
from analytics.ledger.open_items import ledger_bounds
from analytics.migrations import connect
from analytics.reports.monthly_pack import PackError, monthly_pack, parse_month
from analytics.reports.pack_files import pack_pdf, pack_xlsx
from analytics.store.connection import Store

REPORTS = ("aging", "dso", "kpis", "bad-debt", "roll-rates", "dunning", "collectors", "provision", "what-if")


def _add_common(p: argparse.ArgumentParser, *, point: bool) -> None:
    _add_dates(p, point=point)
    _add_filters(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _add_dates(p: argparse.ArgumentParser, *, point: bool) -> None:
    if point:
        p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="report date (default: last posting date in the ledger)")
    else:
        p.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="first day (default: 11 months before --end, from the 1st)")
        p.add_argument("--end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="last day (default: last posting date in the ledger)")


def _add_filters(p: argparse.ArgumentParser) -> None:
    for name, helptext in (("segment", "customer segment"), ("collector", "collector username"),
                           ("sales-rep", "sales rep username"),
                           ("country", "country code"), ("currency", "customer currency"),
                           ("customer", "customer id")):
        p.add_argument(f"--{name}", action="append", metavar="VALUE", help=f"only this {helptext} (repeatable)")
    p.add_argument("--attribute", action="append", metavar="NAME=VALUE",
                   help="only customers whose attribute NAME (an extra column of the customers file, see "
                        "`ardesk db info`) is VALUE (repeatable)")


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
    kpis.add_argument("--compare", action="store_true",
                      help="each tile's KPI now, last month and the same month last year, with the changes "
                           "(the Overview tiles, exact)")
    kpis.set_defaults(handler=_kpis)
    provision = reports.add_parser("provision", help="expected credit loss: the provision matrix as of a date "
                                   "(IFRS 9 simplified approach / CECL), or with --history its monthly movement")
    _add_common(provision, point=True)
    provision.add_argument("--window", type=int, default=DEFAULT_WINDOW_MONTHS, metavar="MONTHS",
                           help="months of roll rates averaged (default %(default)s)")
    provision.add_argument("--factor", action="append", metavar="BUCKET=FACTOR",
                           help="forward-looking factor of a bucket, e.g. --factor 1-30=1.2 (default 1.0; repeatable)")
    provision.add_argument("--history", action="store_true",
                           help="the provision at each month end of the 12 months to --as-of, and its movement")
    provision.set_defaults(handler=_provision)
    whatif = reports.add_parser("what-if", help="what a DSO cut and better roll rates are worth over a period")
    _add_common(whatif, point=False)
    whatif.add_argument("--dso-cut", type=float, default=5, metavar="DAYS", help="default %(default)s")
    whatif.add_argument("--cost-of-capital", type=float, default=8.0, metavar="PCT", help="default %(default)s")
    whatif.add_argument("--roll-improvement", type=float, default=10.0, metavar="PCT", help="default %(default)s")
    whatif.set_defaults(handler=_what_if)
    for name, helptext in (("dso", "monthly DSO (standard, countback), BPDSO, ADD, CEI, % over 90"),
                           ("bad-debt", "write-offs and bad debt %, monthly and rolling 12 months"),
                           ("roll-rates", "share of each bucket rolling one bucket older each month end"),
                           ("dunning", "dunning effectiveness per configuration, version and stage"),
                           ("collectors", "collector KPIs over a period")):
        r = reports.add_parser(name, help=helptext.replace("%", "%%"))
        _add_common(r, point=False)
        r.set_defaults(handler=_series(name))
        if name == "dunning":
            r.add_argument("--compare", action="append", metavar="CONFIG[:VERSION]",
                           help="only this configuration (version; default its latest with runs in the period); "
                                "twice to compare two, with the population each covers (repeatable)")
            r.add_argument("--like-for-like", action="store_true",
                           help="restrict the two --compare sides to the segments both dunned and the period "
                                "both ran in")
            r.set_defaults(handler=_dunning)
    pack = reports.add_parser("pack", help="the monthly pack: KPIs with their changes, aging, DSO, bad debt, roll "
                                           "rates, dunning, top overdue customers, collectors (PDF or Excel)")
    pack.add_argument("--month", required=True, metavar="YYYY-MM", help="the month (its last day is the as-of date)")
    _add_filters(pack)
    pack.add_argument("--format", choices=("pdf", "xlsx"), default="pdf")
    pack.add_argument("--out", metavar="FILE", help="where to write it (default: ardesk-pack-YYYY-MM.pdf|xlsx here)")
    pack.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username,
                      help="whose pack (a CFO, analyst or admin account; default: system)")
    pack.set_defaults(handler=_pack)


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
                   currency=args.currency, customer_id=args.customer, attributes=attributes,
                   sales_rep=getattr(args, "sales_rep", None))


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
    if getattr(args, "compare", False):
        return _emit(kpi_comparison(store, as_of, filters_from(args, store)), args.format)
    return _emit(kpi_summary(store, as_of, filters_from(args, store)), args.format)


def _factors(raw: list[str] | None) -> dict[str, float]:
    factors: dict[str, float] = {}
    for pair in raw or []:
        bucket, sep, value = pair.partition("=")
        try:
            factors[bucket.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or factors.get(bucket.strip(), -1) < 0:
            raise UserError(f"--factor {pair!r}: write it as BUCKET=FACTOR with a factor of 0 or more, e.g. 1-30=1.2.")
    return factors


def _provision(args: argparse.Namespace) -> int:
    store = connect(args.db)
    as_of = args.as_of or _last_posting(store)
    try:
        if args.history:
            return _emit(provision_history(store, add_months(as_of, -11), as_of, args.window, _factors(args.factor),
                                           filters_from(args, store)), args.format)
        return _emit(provision_at(store, as_of, args.window, _factors(args.factor), filters_from(args, store)),
                     args.format)
    except ValueError as exc:
        raise UserError(f"{exc}.") from None


def _what_if(args: argparse.Namespace) -> int:
    store = connect(args.db)
    end = args.end or _last_posting(store)
    start = args.start or add_months(end, -11)
    try:
        result = what_if(store, start, end, args.dso_cut, args.cost_of_capital, args.roll_improvement,
                         filters_from(args, store))
    except ValueError as exc:
        raise UserError(f"{exc}.") from None
    return _emit(pd.DataFrame([result.as_dict()]), args.format)


def _side(raw: str, sides: dict[tuple[int, int], Population], start: date, end: date) -> tuple[int, int]:
    """`CONFIG[:VERSION]` as a (config_id, version) with stage runs in the period."""
    config, _, version = raw.partition(":")
    if not config.strip().isdigit() or (version and not version.strip().isdigit()):
        raise UserError(f"--compare {raw!r}: write a configuration id, optionally with its version, e.g. 2 or 2:3.")
    found = sorted(k for k in sides if k[0] == int(config) and (not version or k[1] == int(version)))
    if not found:
        raise UserError(f"No stage runs of configuration {raw} in the period {start} to {end} "
                        f"(with stage runs: {', '.join(f'{c}:{v}' for c, v in sorted(sides)) or 'none'}).")
    return found[-1]


def _dunning(args: argparse.Namespace) -> int:
    """The stage table under the page's headers, after one line per compared side saying whom it covers
    (to stderr with --format csv/json), the not-like-for-like warning, and the like-for-like ground."""
    store = connect(args.db)
    end = args.end or _last_posting(store)
    start = args.start or add_months(end, -11)
    if start > end:
        raise UserError(f"--start {start} is after --end {end}.")
    filters = filters_from(args, store)
    compare = args.compare or []
    if args.like_for_like and len(compare) != 2:
        raise UserError("--like-for-like compares two sides: give --compare twice, e.g. --compare 1 --compare 2.")
    sides = populations(store, start, end, filters)
    chosen = [_side(raw, sides, start, end) for raw in compare]
    frame = dunning_effectiveness(store, start, end, filters)
    names = {(int(r.config_id), int(r.config_version)): r.config_name for r in frame.itertuples()}
    lines = []
    if args.like_for_like:
        try:
            ground = like_for_like(sides[chosen[0]], sides[chosen[1]], filters)
        except ValueError as reason:
            raise UserError(str(reason)) from None
        lines.append(ground.describe())
        frame = dunning_effectiveness(store, ground.runs_from, end, ground.filters, runs_until=ground.runs_until)
        sides = populations(store, ground.runs_from, end, ground.filters, runs_until=ground.runs_until)
    for key in chosen:
        label = f"{names[key]} (v{key[1]})"
        lines.append(f"{label}: {sides[key].describe()}" if key in sides else f"{label}: no stage runs on this ground.")
    if len(chosen) == 2 and chosen[0] != chosen[1] and all(k in sides for k in chosen):
        if warning := comparison_warning(sides[chosen[0]], sides[chosen[1]]):
            lines.append(warning)
    if chosen:
        keys = pd.MultiIndex.from_frame(frame[["config_id", "config_version"]].astype(int))
        frame = frame[keys.isin(chosen)].reset_index(drop=True)
    if lines:
        print("\n".join(lines) + "\n", file=sys.stdout if args.format == "table" else sys.stderr)
    if args.format == "table":
        frame = human_headers(frame, str(reporting_params()["reporting"]))
    return _emit(frame, args.format)


def _pack(args: argparse.Namespace) -> int:
    """Write the month's pack to --out and say where, with its size."""
    store = connect(args.db)
    try:
        month = parse_month(args.month)
        pack = monthly_pack(store, actor_for(store, args.as_user), month, filters_from(args, store))
    except (PackError, BadUser) as reason:
        raise UserError(str(reason)) from None
    out = Path(args.out or f"ardesk-pack-{month:%Y-%m}.{args.format}")
    content = pack_pdf(pack) if args.format == "pdf" else pack_xlsx(pack)
    try:
        out.write_bytes(content)
    except OSError as exc:
        raise UserError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    print(f"{pack.title} ({pack.describe_filters()}): {out} ({len(content):,} bytes)")
    return 0


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
