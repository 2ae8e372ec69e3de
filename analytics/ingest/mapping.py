"""Import mappings: which source column feeds which AR Desk field, and how to read its text.

A mapping is a TOML file in `config/mappings/` (format in the README, "Importing your ledger"):

    [mapping]
    dataset = "invoices"            # customers, invoices, payments, credit-notes, allocations, fx-rates,
                                    # adjustments, write-offs, contacts, disputes, dunning-history
    date_format = "%m/%d/%Y"        # strptime format; ISO dates (2024-01-31) are always accepted too
    decimal_separator = "."
    thousands_separator = ","
    default_currency = "USD"        # used when the file has no currency column (or a blank cell)
    [columns]                       # target = "source column"
    customer_id = "customerID"
    ...

`--column target=source` on the command line (or the selectboxes of the import page) override
single entries. No Streamlit here: the page and the CLI share these functions.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from analytics.settings import CONFIG_DIR, load_settings

MAPPINGS_DIR = CONFIG_DIR / "mappings"

DATASETS: tuple[str, ...] = (
    "customers", "invoices", "payments", "credit-notes", "adjustments", "allocations", "write-offs", "fx-rates",
    "contacts", "disputes", "dunning-history",  # a team's own records: `team_datasets`
    "installments",  # an invoice's payment schedule: `installment_rules`, `merges.installments`
)
# The datasets whose rows are ledger entries, and each one's entry type.
LEDGER_DATASETS = {"invoices": "invoice", "payments": "payment", "credit-notes": "credit_note",
                   "adjustments": "adjustment"}
# An allocation's `from_type` as the datasets spell it (lower case; `-` and spaces read as `_`).
FROM_TYPES = ("payment", "credit_note", "adjustment", "write_off")

# Target fields per dataset: (required, optional). Required ones must be mapped and non-blank.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customers": (
        ("customer_id",),
        ("name", "segment", "country", "currency", "payment_terms_days", "credit_limit", "status",
         "collector", "sales_rep"),
    ),
    "invoices": (
        ("customer_id", "document_number", "posting_date", "amount"),
        ("due_date", "currency", "reference", "customer_name", "settled_date", "disputed"),
    ),
    "payments": (
        ("customer_id", "document_number", "posting_date", "amount"),
        ("currency", "reference", "customer_name"),
    ),
    "credit-notes": (
        ("customer_id", "document_number", "posting_date", "amount"),
        ("currency", "reference", "customer_name"),
    ),
    "allocations": (
        ("from_document", "to_document", "amount", "allocation_date"),
        ("from_type",),
    ),
    "fx-rates": (
        ("rate_date", "currency", "rate"),
        (),
    ),
    # direction: debit or credit (else the amount's sign: positive = debit); reason is the entry's
    # reference; related_invoice names an invoice of the same customer; due_date defaults to posting_date
    "adjustments": (
        ("customer_id", "document_number", "posting_date", "amount"),
        ("direction", "reason", "related_invoice", "due_date", "currency", "customer_name"),
    ),
    # document_number: the invoice (else the debit adjustment) written off; posting_date: the write-off's date
    "write-offs": (
        ("document_number", "amount", "posting_date"),
        ("reason",),
    ),
    "contacts": (
        ("customer_id",),
        ("name", "email", "phone", "role", "preferred_channel", "is_primary", "active"),
    ),
    "disputes": (
        ("customer_id", "opened_on"),
        ("document_number", "amount", "reason", "department", "resolved_on", "resolution"),
    ),
    "dunning-history": (
        ("document_number", "configuration", "stage_order", "run_date"),
        ("stage_name", "channel", "outcome", "template"),
    ),
    # document_number: the invoice; one row per installment, summing to the invoice's amount
    "installments": (
        ("document_number", "due_date", "amount"),
        (),
    ),
}

DATE_FIELDS = {"posting_date", "due_date", "settled_date", "allocation_date", "rate_date", "opened_on",
               "resolved_on", "run_date"}
# One of a list of words, checked against the list (so never longer than its longest word).
CHOICE_FIELDS = {"direction", "role", "preferred_channel", "channel", "outcome"}
BOOLEAN_FIELDS = {"is_primary", "active"}  # true_values, FALSE_VALUES, or blank (the field's default)
FALSE_VALUES = ("no", "n", "false", "0")
AMOUNT_FIELDS = {"amount", "credit_limit", "rate"}


class MappingError(ValueError):
    """A mapping file or override that cannot be used, explained in plain words."""


@dataclass(frozen=True)
class Mapping:
    """How to read one export into one dataset."""

    dataset: str
    columns: dict[str, str] = field(default_factory=dict)  # target -> source column
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    thousands_separator: str = ""
    default_currency: str | None = None
    entry_type: str | None = None  # ledger entry type; defaults from the dataset
    delimiter: str = ","
    sheet: str | int = 0  # Excel sheet name or index
    default_terms_days: int = 30  # due date = posting date + this, when the file has no due date
    default_segment: str = "small business"  # for customers created by an invoice import
    settlement_prefix: str = "SETTLE-"  # document number of a payment generated from a settlement date
    write_off_prefix: str = "WO-"  # document number of the write-off entry: this + the item's number
    true_values: tuple[str, ...] = ("yes", "y", "true", "1", "x")
    name: str = "by hand"
    description: str = ""
    sync: dict[str, Any] = field(default_factory=dict)  # table / query / watermark_column

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise MappingError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        required, optional = FIELDS[self.dataset]
        unknown = sorted(set(self.columns) - set(required) - set(optional))
        if unknown:
            raise MappingError(
                f"The mapping names fields that {self.dataset} do not have: {', '.join(unknown)}. "
                f"Fields: {', '.join(required + optional)}."
            )
        if self.decimal_separator not in {".", ","}:
            raise MappingError("decimal_separator must be '.' or ','.")
        if self.decimal_separator == self.thousands_separator:
            raise MappingError("decimal_separator and thousands_separator must differ.")

    @property
    def ledger_entry_type(self) -> str | None:
        return self.entry_type or LEDGER_DATASETS.get(self.dataset)

    @property
    def currency(self) -> str:
        return (self.default_currency or load_settings().reporting_currency).upper()

    def source(self, target: str) -> str:
        """The source column mapped to `target`; an unmapped field reads a column of the same name."""
        return self.columns.get(target, target)

    def with_columns(self, overrides: dict[str, str]) -> Mapping:
        return replace(self, columns={**self.columns, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """A TOML/JSON-able form (the inbox job file carries it)."""
        top = {k: v for k, v in self.__dict__.items() if k not in {"columns", "sync", "true_values"}}
        top["true_values"] = list(self.true_values)
        return {"mapping": {k: v for k, v in top.items() if v is not None}, "columns": dict(self.columns),
                "sync": dict(self.sync)}


def mapping_from_dict(raw: dict[str, Any], name: str = "by hand") -> Mapping:
    """Build a mapping from the parsed TOML structure ([mapping], [columns], [sync])."""
    top = dict(raw.get("mapping", {}))
    if "dataset" not in top:
        raise MappingError(f"Mapping {name}: [mapping] dataset is missing.")
    if "true_values" in top:
        top["true_values"] = tuple(str(v).lower() for v in top["true_values"])
    top.setdefault("name", name)
    known = set(Mapping.__dataclass_fields__) - {"columns", "sync"}
    extra = sorted(set(top) - known)
    if extra:
        raise MappingError(f"Mapping {name}: unknown settings {', '.join(extra)}.")
    columns = {str(k): str(v) for k, v in raw.get("columns", {}).items()}
    return Mapping(columns=columns, sync=dict(raw.get("sync", {})), **top)


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file; a bare name looks in config/mappings/ (with or without .toml)."""
    p = Path(path)
    if not p.exists():
        for candidate in (MAPPINGS_DIR / p.name, MAPPINGS_DIR / f"{p.name}.toml"):
            if candidate.exists():
                p = candidate
                break
        else:
            raise MappingError(f"No mapping file {path} (shipped mappings: {', '.join(shipped_mappings())}).")
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"Mapping {p}: not valid TOML ({exc}).") from None
    return mapping_from_dict(raw, name=p.stem)


def shipped_mappings() -> list[str]:
    """Names of the mapping files in config/mappings/."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml"))


def parse_column_overrides(pairs: list[str] | None) -> dict[str, str]:
    """`["amount=Net Amount", ...]` -> {"amount": "Net Amount"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise MappingError(f"--column {pair!r}: write it as target=source, e.g. amount=InvoiceAmount.")
        out[target.strip()] = source.strip()
    return out


# ISO 4217 active codes: the fx-rates dataset accepts these; ledger rows need a rate as well.
ISO_CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF
XPF YER ZAR ZMW ZWL
""".split())
