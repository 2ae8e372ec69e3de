"""The Road Traffic Fine Management Process log as a receivables ledger: the second demo.

The log (de Leoni & Mannhardt 2015, doi:10.4121/uuid:270fd440-1057-4fb9-89a9-b699b47990f5; an
Italian local police's fines, 2000-2013, 150,370 cases, 561,470 events) is read from its XES file
(`read_events`) and turned by `convert` into the public import datasets, which `ardesk demo
--dataset road-fines` then imports through the ordinary import code, in `DATASET_ORDER`. Pure
functions: events in, DataFrames out, nothing written here. Every column is text, named as the
dataset's field, so a mapping with no `[columns]` reads it. The rules:

- **customer** = the case. The log anonymises the offender, so one case (one fine) is one
  customer: customer_id = the case id (`A100`), name "Offender, fine A100",
  payment_terms_days 60, segment "vehicle class X"; the fine's vehicle class, article and points
  are extra columns, kept as customer attributes.
- **invoice** = Create Fine: document_number = the case id, posting_date = its date, amount = its
  `amount`. due_date = the date the offender was notified + 60 days (Italian highway code,
  art. 202: 60 days to pay from notification): notified = Insert Fine Notification, else Send Fine,
  else Create Fine (a fine handed over on the spot). A fine of 0.00 is passed on as read, so the
  import rejects it ("invoice amount is zero or negative") and the rows naming it follow it into the
  quarantine.
- **debit adjustments**: Add penalty carries the fine's *new total*; the penalty is that total minus
  the fine, posted on the Add penalty date, due that day (document `<case>-PEN`). Send Fine carries
  the postal `expense`, re-billed to the offender: a debit adjustment `<case>-EXP` posted on the
  Send Fine date and due with the fine. Both name the fine as related invoice. A penalty that does
  not raise the total, or an expense of 0.00, owes nothing and makes no row.
- **payment** = Payment: `<case>-P<n>` (n = 1, 2, ... in the log's order), its `paymentAmount`.
- **allocations**: each case's payments, in order, pay its items oldest first (posting date; on
  one day the fine, then the expense, then the penalty): the running total of the payments is laid
  over the running total of the items and each overlap is one allocation, dated the later of the
  payment's and the item's posting dates (money paid before the penalty was booked pays it the day
  it is booked). What the payments leave over is unapplied (some cases are overpaid).
- **dunning history**: configuration "Road fines (imported)", three stages: 1 "Fine sent" (Send
  Fine, letter), 2 "Fine notified" (Insert Fine Notification, letter), 3 "Credit collection" (Send
  for Credit Collection, escalation). Outcome sent.
- **disputes** = appeals. To the prefecture: opened on Insert Date Appeal to Prefecture, resolved
  on Receive Result Appeal from Prefecture (else Notify Result Appeal to Offender) when the log has
  it, department "Prefecture"; resolution "rejected" when the fine stands (the log's `dismissal`
  NIL on Send Appeal to Prefecture) and "fine dismissed (code X)" otherwise. To a judge: opened on
  Appeal to Judge, department "Judge", left open (the log dates no judgement), its dismissal code in
  the reason. The disputed amount is the fine. Appeals to both on one day are one dispute (the
  natural key is the fine and the day): the prefecture's.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

LOG_NAME = "Road_Traffic_Fine_Management_Process.xes"
LOG_DOI = "doi:10.4121/uuid:270fd440-1057-4fb9-89a9-b699b47990f5"
LOG_URL = "https://data.4tu.nl/articles/dataset/Road_Traffic_Fine_Management_Process/12683249"
DATASET_ORDER = ("customers", "invoices", "adjustments", "payments", "allocations", "dunning-history", "disputes")
CONFIGURATION = "Road fines (imported)"
TERMS_DAYS = 60
# (activity, stage order, stage name, channel)
DUNNING_STAGES = (
    ("Send Fine", 1, "Fine sent", "letter"),
    ("Insert Fine Notification", 2, "Fine notified", "letter"),
    ("Send for Credit Collection", 3, "Credit collection", "escalation"),
)
# XES attribute key -> event column
ATTRIBUTES = {
    "concept:name": "activity", "time:timestamp": "timestamp", "amount": "amount",
    "paymentAmount": "payment_amount", "expense": "expense", "vehicleClass": "vehicle_class",
    "article": "article", "points": "points", "dismissal": "dismissal",
}
EVENT_COLUMNS = ("case", "activity", "date", "amount", "payment_amount", "expense", "vehicle_class",
                 "article", "points", "dismissal")


class LogNotFound(FileNotFoundError):
    """The road-fines log is not where it was looked for; the message says where to get it."""


def locate_log(file: str | Path | None, root: Path) -> Path:
    """`file` if given (it must exist), else `../shared/data/real/<log>.xes.zip` beside the checkout `root`."""
    candidates = [Path(file)] if file else [root.parent / "shared" / "data" / "real" / f"{LOG_NAME}.zip"]
    for path in candidates:
        if path.is_file():
            return path
    raise LogNotFound(
        f"The Road Traffic Fine Management Process log is not at {candidates[0]}. Download it from 4TU.ResearchData "
        f"({LOG_DOI}, {LOG_URL}): the .xes file, zipped or not, and pass it with --file PATH.")


def read_events(source: str | Path | IO[bytes]) -> pd.DataFrame:
    """The log's events, one row each in the log's order: `EVENT_COLUMNS`, `date` the local calendar date.

    `source` is an .xes file, a .zip holding one, or a binary file object of XES. Streams the XML
    (iterparse; each trace is cleared once read), so memory holds the columns, not the tree.
    """
    if isinstance(source, (str, Path)) and str(source).lower().endswith(".zip"):
        with zipfile.ZipFile(source) as archive:
            name = next((n for n in archive.namelist()
                         if n.lower().endswith(".xes") and not n.startswith("__MACOSX")), None)
            if name is None:
                raise LogNotFound(f"{source} holds no .xes file.")
            with archive.open(name) as handle:
                return read_events(handle)
    keys = tuple(ATTRIBUTES)
    columns: dict[str, list[str | None]] = {key: [] for key in keys}
    cases: list[str | None] = []
    for _, element in ET.iterparse(source, events=("end",)):
        if element.tag != "trace":
            continue
        case = None
        for child in element:
            if child.tag == "event":
                values = {a.get("key"): a.get("value") for a in child}
                cases.append(case)
                for key in keys:
                    columns[key].append(values.get(key))
            elif child.get("key") == "concept:name":
                case = child.get("value")
        element.clear()
    frame = pd.DataFrame({ATTRIBUTES[k]: v for k, v in columns.items()})
    frame.insert(0, "case", cases)
    # the timestamp's first 10 characters are the local date (the offset only says which summer time)
    frame["date"] = pd.to_datetime(frame.pop("timestamp").str[:10], format="%Y-%m-%d")
    for column in ("amount", "payment_amount", "expense"):
        frame[column] = pd.to_numeric(frame[column])
    return frame[list(EVENT_COLUMNS)]


def read_events_text(xes: str) -> pd.DataFrame:
    """`read_events` of XES given as text (tests)."""
    return read_events(io.BytesIO(xes.encode("utf-8")))


def _iso(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%Y-%m-%d")


def _money(amounts: pd.Series) -> pd.Series:
    return amounts.round(2).map("{:.2f}".format)


def _first(events: pd.DataFrame, activity: str, columns: list[str]) -> pd.DataFrame:
    """The first event of `activity` per case: case + `columns`."""
    rows = events[events["activity"] == activity]
    return rows.drop_duplicates("case")[["case", *columns]].set_index("case")


def convert(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The import datasets of the log, in `DATASET_ORDER` (rules in the module docstring)."""
    fines = _first(events, "Create Fine", ["date", "amount", "vehicle_class", "article", "points"])
    notified = _first(events, "Insert Fine Notification", ["date"])["date"]
    sent = _first(events, "Send Fine", ["date", "expense"])
    fines["due"] = (notified.reindex(fines.index).fillna(sent["date"].reindex(fines.index))
                    .fillna(fines["date"]) + pd.Timedelta(days=TERMS_DAYS))
    cases = fines.index.to_series()

    customers = pd.DataFrame({
        "customer_id": cases.values, "name": "Offender, fine " + cases.values,
        "payment_terms_days": str(TERMS_DAYS),
        # the segment a fines office works by: the vehicle class (A car, C truck, M motorcycle, R trailer)
        "segment": ("vehicle class " + fines["vehicle_class"].fillna("unknown")).values,
        "vehicle_class": fines["vehicle_class"].fillna("").values,
        "article": fines["article"].fillna("").values, "points": fines["points"].fillna("").values,
    })
    invoices = pd.DataFrame({
        "customer_id": cases.values, "document_number": cases.values, "posting_date": _iso(fines["date"]).values,
        "due_date": _iso(fines["due"]).values, "amount": _money(fines["amount"]).values,
        "reference": "Road traffic fine",
    })

    # items each case owes: fine, expense, penalty (kind orders them on one day)
    penalty = events[events["activity"] == "Add penalty"].drop_duplicates("case")[["case", "date", "amount"]]
    penalty = penalty.assign(amount=penalty["amount"].values - fines["amount"].reindex(penalty["case"]).values)
    penalty = penalty[penalty["amount"] > 0].assign(kind=2, document=penalty["case"] + "-PEN", due=penalty["date"],
                                                    reason="Penalty: late payment (Add penalty)")
    expense = sent[sent["expense"] > 0].reset_index()
    expense = expense.rename(columns={"expense": "amount"}).assign(
        kind=1, document=expense["case"] + "-EXP", due=fines["due"].reindex(expense["case"]).values,
        reason="Postal expenses (Send Fine)")
    debits = pd.concat([expense, penalty], ignore_index=True)
    adjustments = pd.DataFrame({
        "customer_id": debits["case"], "document_number": debits["document"], "posting_date": _iso(debits["date"]),
        "due_date": _iso(debits["due"]), "amount": _money(debits["amount"]), "direction": "debit",
        "reason": debits["reason"], "related_invoice": debits["case"],
    })

    pay = events[events["activity"] == "Payment"][["case", "date", "payment_amount"]].copy()
    pay["n"] = pay.groupby("case").cumcount() + 1
    pay["document"] = pay["case"] + "-P" + pay["n"].astype(str)
    payments = pd.DataFrame({
        "customer_id": pay["case"], "document_number": pay["document"], "posting_date": _iso(pay["date"]),
        "amount": _money(pay["payment_amount"]), "reference": "Payment",
    })

    items = pd.concat([
        pd.DataFrame({"case": cases.values, "date": fines["date"].values, "kind": 0, "document": cases.values,
                      "amount": fines["amount"].values}),
        debits[["case", "date", "kind", "document", "amount"]],
    ], ignore_index=True)
    allocations = allocate(items, pay.rename(columns={"payment_amount": "amount"}))

    return {
        "customers": customers, "invoices": invoices, "adjustments": adjustments, "payments": payments,
        "allocations": allocations, "dunning-history": dunning_history(events), "disputes": disputes(events, fines),
    }


def allocate(items: pd.DataFrame, payments: pd.DataFrame) -> pd.DataFrame:
    """Allocations of each case's payments to its items, oldest first, as the allocations dataset.

    `items`: case, date, kind, document, amount (> 0); `payments`: case, date, n, document, amount.
    Items in (date, kind) order and payments in (date, n) order each get a running interval
    [before, after) of their case's total; an item and a payment overlapping by x > 0 make one
    allocation of x, dated the later of the two dates. Never more than an item owes nor than a
    payment brings. Set-based: one merge on the case.
    """
    def intervals(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
        frame = frame[frame["amount"] > 0].sort_values(["case", *order], kind="stable")
        cents = (frame["amount"] * 100).round().astype("int64")
        after = cents.groupby(frame["case"]).cumsum()
        return frame.assign(lo=after - cents, hi=after)[["case", "date", "document", "lo", "hi"]]

    owed = intervals(items, ["date", "kind"])
    paid = intervals(payments, ["date", "n"])
    pairs = paid.merge(owed, on="case", suffixes=("_pay", "_item"))
    overlap = np.minimum(pairs["hi_pay"], pairs["hi_item"]) - np.maximum(pairs["lo_pay"], pairs["lo_item"])
    pairs = pairs.assign(cents=overlap)[overlap > 0].sort_values(["case", "lo_pay", "lo_item"], kind="stable")
    when = np.maximum(pairs["date_pay"].values, pairs["date_item"].values)
    return pd.DataFrame({
        "from_document": pairs["document_pay"].values, "to_document": pairs["document_item"].values,
        "amount": (pairs["cents"] // 100).astype(str).values + "."
                  + (pairs["cents"] % 100).astype(str).str.zfill(2).values,
        "allocation_date": _iso(pd.Series(when)).values, "from_type": "payment",
    })


def dunning_history(events: pd.DataFrame) -> pd.DataFrame:
    """One row per Send Fine, Insert Fine Notification and Send for Credit Collection event (`DUNNING_STAGES`)."""
    stages = pd.DataFrame(DUNNING_STAGES, columns=["activity", "stage_order", "stage_name", "channel"])
    runs = events[["case", "activity", "date"]].merge(stages, on="activity").drop_duplicates(["case", "activity", "date"])
    runs = runs.sort_values(["case", "stage_order", "date"], kind="stable")
    return pd.DataFrame({
        "document_number": runs["case"].values, "configuration": CONFIGURATION,
        "stage_order": runs["stage_order"].astype(str).values, "stage_name": runs["stage_name"].values,
        "channel": runs["channel"].values, "run_date": _iso(runs["date"]).values, "outcome": "sent",
    })


def disputes(events: pd.DataFrame, fines: pd.DataFrame) -> pd.DataFrame:
    """Appeals to the prefecture and to a judge as disputes of the fine (rules in the module docstring)."""
    opened = _first(events, "Insert Date Appeal to Prefecture", ["date"])["date"]
    result = _first(events, "Receive Result Appeal from Prefecture", ["date"])["date"]
    notice = _first(events, "Notify Result Appeal to Offender", ["date"])["date"]
    resolved = result.reindex(opened.index).fillna(notice.reindex(opened.index))
    resolved = resolved.where(resolved >= opened)
    code = _first(events, "Send Appeal to Prefecture", ["dismissal"])["dismissal"].reindex(opened.index).fillna("NIL")
    resolution = np.where(code == "NIL", "rejected", "fine dismissed (code " + code + ")")
    prefecture = pd.DataFrame({
        "customer_id": opened.index, "document_number": opened.index, "opened_on": _iso(opened).values,
        "amount": _money(fines["amount"].reindex(opened.index)).values, "reason": "Appeal to the prefecture",
        "department": "Prefecture", "resolved_on": _iso(resolved).fillna("").values,
        "resolution": np.where(resolved.notna().values, resolution, ""),
    })
    judge = events[events["activity"] == "Appeal to Judge"]
    judge = judge.drop_duplicates(["case", "date"])
    judge_code = judge["dismissal"].fillna("NIL")
    judged = pd.DataFrame({
        "customer_id": judge["case"].values, "document_number": judge["case"].values,
        "opened_on": _iso(judge["date"]).values, "amount": _money(fines["amount"].reindex(judge["case"])).values,
        "reason": np.where(judge_code == "NIL", "Appeal to a judge",
                           "Appeal to a judge (dismissal code " + judge_code + " in the log)"),
        "department": "Judge", "resolved_on": "", "resolution": "",
    })
    out = pd.concat([prefecture, judged], ignore_index=True)  # one dispute per (fine, day): the prefecture's
    return out.drop_duplicates(["customer_id", "document_number", "opened_on"]).reset_index(drop=True)
