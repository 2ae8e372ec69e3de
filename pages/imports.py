"""Imports: bring an ERP export in, see what would be rejected and why, and the last runs."""

import hashlib
import json
from dataclasses import replace

import streamlit as st

from analytics.ingest.imports import recent_runs, run_import, sample_files
from analytics.ingest.mapping import DATASETS, FIELDS, Mapping, MappingError, load_mapping, shipped_mappings
from analytics.ingest.quarantine import quarantined_rows
from analytics.ingest.reading import ImportFailed, ImportLimits, read_source
from analytics.ingest.validation import validate
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page

actor = require_page("imports")
store = get_store()
BY_HAND = "(map the columns by hand)"
NOT_MAPPED = "(not in the file)"
FORMAT_KEYS = {"imports_date_format": "date_format", "imports_decimal": "decimal_separator",
               "imports_thousands": "thousands_separator", "imports_currency": "currency",
               "imports_delimiter": "delimiter"}


def _apply_chosen_mapping() -> None:
    """Choosing a mapping applies all of it: its dataset, its columns and its formats.

    Keyed widgets keep what they hold across reruns (the browser too) and ignore a new default, so
    the mapping's formats are written into them here, before they are drawn again; its columns are
    written into the column pickers when they are drawn for this file and mapping (below).
    """
    name = st.session_state["imports_mapping"]
    chosen = load_mapping(name) if name != BY_HAND else Mapping(dataset=st.session_state.get("imports_dataset",
                                                                                             "invoices"))
    st.session_state["imports_dataset"] = chosen.dataset
    for key, attribute in FORMAT_KEYS.items():
        st.session_state[key] = getattr(chosen, attribute)


st.title("Imports")
st.caption("Customers, invoices, payments, credit notes, allocations and FX rates from CSV, Excel or Parquet. "
           "Nothing is written until you press Import; re-importing a file changes nothing.")

# -- the file -------------------------------------------------------------------------------------
limits = ImportLimits.from_settings()
upload = st.file_uploader("ERP export", type=["csv", "xlsx", "parquet"], key="imports_upload",
                          max_upload_size=limits.max_upload_mb,
                          help=f"Up to {limits.max_upload_mb:,} MB here (larger files: `ardesk import`) and "
                               f"{limits.max_rows:,} rows ([imports] in config/settings.toml).")
samples = {p.name: p for p in sample_files()}
sample = st.selectbox("...or try a sample export", ["(none)", *samples], key="imports_sample",
                      disabled=upload is not None)
if upload is not None:
    data, filename = upload.getvalue(), upload.name
elif sample != "(none)":
    data, filename = samples[sample].read_bytes(), sample
else:
    data, filename = None, None

# -- dataset and mapping --------------------------------------------------------------------------
left, right = st.columns(2)
choice = left.selectbox("Mapping", [BY_HAND, *shipped_mappings()], key="imports_mapping",
                        on_change=_apply_chosen_mapping,
                        help="Mapping files live in config/mappings/ (format in the README). Choosing one "
                             "applies its columns and its formats.")
base = load_mapping(choice) if choice != BY_HAND else None
# the widgets' values live in the session (set from the mapping when one is chosen), never as defaults too
st.session_state.setdefault("imports_dataset", base.dataset if base else "invoices")
dataset = right.selectbox("Dataset", DATASETS, key="imports_dataset", disabled=base is not None)
base = base or Mapping(dataset=dataset)
for key, attribute in FORMAT_KEYS.items():
    st.session_state.setdefault(key, getattr(base, attribute))
with st.expander("Formats", expanded=base.name == "by hand"):
    f1, f2, f3, f4, f5 = st.columns(5)
    date_format = f1.text_input("Date format", key="imports_date_format",
                                help="strptime codes, e.g. %m/%d/%Y; ISO dates always work")
    decimal = f2.selectbox("Decimal separator", [".", ","], key="imports_decimal")
    thousands = f3.selectbox("Thousands separator", ["", ",", ".", " "], key="imports_thousands",
                             format_func=lambda s: {"": "(none)", " ": "(space)"}.get(s, s))
    currency = f4.text_input("Default currency", key="imports_currency")
    delimiter = f5.text_input("CSV delimiter", key="imports_delimiter")
strict = st.checkbox("Strict: reject rows of customers not yet known (otherwise they are created)",
                     key="imports_strict")

if data is None:
    st.info("Upload an export (or pick a sample) to map, validate and import it.")
else:
    try:
        table = read_source(data, replace(base, delimiter=delimiter or ","), filename=filename, limits=limits)
    except ImportFailed as exc:
        st.error(escape_markdown(exc))
        st.stop()

    # -- preview and column mapping ---------------------------------------------------------------
    st.subheader("Preview")
    st.dataframe(table.slice(0, 10).to_pandas(), hide_index=True)
    st.caption(f"{table.num_rows:,} rows, first 10 shown.")
    st.subheader("Columns")
    columns = table.column_names
    required, optional = FIELDS[base.dataset]
    digest = hashlib.sha256(data).hexdigest()
    if st.session_state.get("imports_columns_for") != (digest, choice, base.dataset):
        # another file or mapping: every picker starts from the mapping's column (a same-named one by hand)
        for target in required + optional:
            default = base.source(target)
            st.session_state[f"imports_col_{base.dataset}_{target}"] = default if default in columns else NOT_MAPPED
        st.session_state["imports_columns_for"] = (digest, choice, base.dataset)
    chosen: dict[str, str] = {}
    grid = st.columns(4)
    for i, target in enumerate(required + optional):
        picked = grid[i % 4].selectbox(f"{target}{' *' if target in required else ''}", [NOT_MAPPED, *columns],
                                       key=f"imports_col_{base.dataset}_{target}")
        if picked != NOT_MAPPED:
            chosen[target] = picked
    try:
        mapping = replace(base, columns=chosen, date_format=date_format, decimal_separator=decimal,
                          thousands_separator=thousands, default_currency=currency or None,
                          delimiter=delimiter or ",")
    except MappingError as exc:
        st.error(escape_markdown(exc))
        st.stop()

    # -- validate and import ----------------------------------------------------------------------
    # Import is offered only once this file has been validated under this very mapping, and only
    # when something would be imported; the count of rows that will be rejected is said first.
    current = digest + json.dumps(
        {"mapping": mapping.to_dict(), "strict": strict}, sort_keys=True, default=str)
    b1, b2, _ = st.columns([1, 1, 4])
    check = b1.button("Validate", key="imports_validate")
    messages = st.container()
    report = None
    if check:
        report = validate(store, table, mapping, strict=strict, limits=limits)
        st.session_state["imports_validated"] = (current, report.rows_read, report.rejected_rows,
                                                 report.importable)
    validated = st.session_state.get("imports_validated")
    is_current = validated is not None and validated[0] == current
    offered = is_current and validated[3]
    go = b2.button("Import", type="primary", key="imports_go", disabled=not offered,
                   help="Validate first: Import is offered once this file passed validation under the "
                        "current mapping and formats.") and offered
    if check:
        lines = report.summary_lines()
        show = messages.success if report.ok else messages.warning if report.importable else messages.error
        show(escape_markdown(lines[0]))
        if report.new_customers:
            messages.markdown(escape_markdown(lines[-1]))
        for line in report.attribute_lines():  # a customers file's extra columns: kept as attributes or why not
            messages.caption(escape_markdown(line))
    elif offered and not go:
        messages.caption("Validated: press Import to write the accepted rows.")
    elif not go:
        messages.caption("Press Validate: Import is offered once this file and mapping pass validation.")
    if offered and validated[2] and not go:
        read, rejected = validated[1], validated[2]
        messages.warning(f"{rejected:,} of {read:,} rows will be rejected (kept in the quarantine with their "
                         f"reasons); Import writes the other {read - rejected:,}.")
    if go:
        st.session_state.pop("imports_validated", None)  # the store changed: validate again before the next
        bar = st.progress(0.0, text="Starting the import")
        try:
            result = run_import(store, table, mapping, actor, strict=strict, source_label=filename, limits=limits,
                                progress=lambda p: bar.progress(p.fraction, text=str(p)))
        except ImportFailed as exc:
            st.error(escape_markdown(exc))
            st.stop()
        lines = result.summary_lines()
        (st.success if result.status == "ok" else st.error)(escape_markdown(lines[0]))
        for line in lines[1:]:
            st.markdown(escape_markdown(line))
        report = result.report
    if report is not None and len(report.errors):
        st.subheader("Rejected rows, by reason")
        st.dataframe(report.by_column_and_reason(), hide_index=True)
        st.dataframe(report.errors, hide_index=True)
        st.download_button("Download the rejected rows (CSV)", report.quarantine_frame().to_csv(index=False),
                           file_name=f"rejected-{filename}.csv", mime="text/csv", on_click="ignore",
                           key="imports_download")

# -- last runs ------------------------------------------------------------------------------------
st.subheader("Last runs")
runs = recent_runs(store)
if runs.empty:
    st.caption("No imports or syncs yet.")
else:
    st.dataframe(runs, hide_index=True, column_config={
        "started_at": st.column_config.DatetimeColumn("when", format="YYYY-MM-DD HH:mm:ss"),
        "rows_read": "rows in", "rows_rejected": "rejected", "error": "errors"})
    with_rejects = runs[runs["rows_rejected"] > 0]["run_id"].tolist()
    if with_rejects:
        run_id = st.selectbox("Quarantine of run", with_rejects, key="imports_quarantine_run")
        rejected = quarantined_rows(store, int(run_id))
        st.dataframe(rejected, hide_index=True)
        st.download_button("Download this run's rejected rows (CSV)", rejected.to_csv(index=False),
                           file_name=f"quarantine-run{run_id}.csv", mime="text/csv", on_click="ignore",
                           key="imports_download_run")
