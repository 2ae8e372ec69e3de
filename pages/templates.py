"""Templates: choose a message template, edit its subject and bodies (plain text and HTML, Jinja),
see the variables it may use, check it, preview it against a customer, save it as a new version,
and read its versions (who, when). Analysts and admins edit; collectors read. The letterhead comes
from settings and sits under every message."""

import pandas as pd
import streamlit as st

from analytics.access.roles import PermissionDenied, may
from analytics.collections.customer_360 import find_customers
from analytics.collections.letterhead import Letterhead
from analytics.collections.outreach.config import OutreachError
from analytics.collections.outreach.message_templates import (
    VARIABLES,
    TemplateProblems,
    TemplateVersion,
    check_template,
    retire_template,
    save_template,
    template_names,
    template_versions,
)
from analytics.collections.outreach.queue import preview
from analytics.collections.worklist import default_as_of
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page

actor = require_page("templates")
store = get_store()
editor = may(actor, "edit_templates")
NEW = "(a new template)"

st.title("Templates")
as_of = default_as_of(store)
st.caption(f"As of {as_of} · Jinja, sandboxed; every variable must exist · the latest version is the one sent · "
           + ("you may edit and save" if editor else "read only: analysts and admins edit templates"))
if flash := st.session_state.pop("templates_flash", None):
    st.success(flash)

# -- which template ------------------------------------------------------------------------------------
names = template_names(store)
choice = st.selectbox("Template", [*names, NEW] if editor else names, key="tpl_choice")
if choice == NEW:
    name = st.text_input("Name of the new template (a-z, 0-9, _)", key="tpl_new_name").strip()
    versions: list[TemplateVersion] = []
else:
    name = choice
    versions = template_versions(store, name)
latest = versions[-1] if versions else TemplateVersion(name, 0, "", "", "", "", None)
if versions:
    st.caption(f"Version {latest.version} · by {escape_markdown(latest.created_by)} · "
               f"{'from the file' if latest.created_at is None else latest.created_at.strftime('%Y-%m-%d %H:%M')}")

# -- the letterhead -----------------------------------------------------------------------------------
letterhead = Letterhead.from_settings()
with st.expander("Letterhead (settings [letterhead]: under every email and on every PDF statement)"):
    st.text("\n".join(letterhead.footer_lines()) or "No letterhead set.")
    if problem := letterhead.logo_problem():
        st.warning(escape_markdown(problem))
    elif (logo := letterhead.logo_path()) is not None:
        st.image(str(logo), width=180)

# -- the editor and the variables ----------------------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    key = name or "_new"
    subject = st.text_input("Subject", value=latest.subject, key=f"tpl_subject_{key}", disabled=not editor)
    body_text = st.text_area("Plain-text body", value=latest.body_text, height=300, key=f"tpl_text_{key}",
                             disabled=not editor)
    body_html = st.text_area("HTML body (empty: the plain text, escaped)", value=latest.body_html, height=200,
                             key=f"tpl_html_{key}", disabled=not editor)
with right:
    st.markdown("**Variables**")
    st.dataframe(pd.DataFrame({"variable": list(VARIABLES), "holds": list(VARIABLES.values())}),
                 hide_index=True, width="stretch")

# -- checked before saving -----------------------------------------------------------------------------
problems = check_template(subject, body_text, body_html)
if problems:
    for p in problems:
        st.error(escape_markdown(p))
else:
    st.success("No problems found: every variable exists and it renders for a sample customer.")

# -- live preview against a customer -------------------------------------------------------------------
st.subheader("Preview")
c1, c2, c3 = st.columns([3, 1, 1])
search = c1.text_input("Customer (name or id)", key="tpl_customer_search")
found = find_customers(store, search)
rate = c2.number_input("Interest (% a year)", min_value=0.0, max_value=100.0, value=0.0, step=0.5,
                       key="tpl_rate")
fee = c3.number_input("Stage fee", min_value=0.0, value=0.0, step=5.0, key="tpl_fee")
if found.empty:
    st.info("No customer to preview with" + (f": none matches {escape_markdown(repr(search))}." if search else "."))
elif problems:
    st.info("Fix the problems above to see the preview.")
else:
    labels = found.set_index("customer_id")["name"]
    customer = st.selectbox("Preview for", found["customer_id"].tolist(), key="tpl_customer",
                            format_func=lambda c: f"{c} · {labels.loc[c]}")
    edited = TemplateVersion(name or "new_template", latest.version + 1, subject, body_text, body_html,
                             actor.username, None)
    try:
        [draft] = preview(store, [customer], name or "new_template", as_of, sender_name=actor.name or actor.username,
                          charges=(rate / 100, fee) if rate or fee else None, version=edited)
    except OutreachError as exc:
        st.error(escape_markdown(str(exc)))
    else:
        if draft.problem:
            st.info(f"This customer would not be sent it: {escape_markdown(draft.problem)}.")
        st.text(f"Subject: {draft.subject}")
        st.text(draft.body)
        with st.expander("HTML part (source)"):
            st.code(draft.body_html or "", language="html")

# -- save, retire --------------------------------------------------------------------------------------
if editor:
    save, retire = st.columns(2)
    if save.button("Save as a new version", type="primary", disabled=bool(problems) or not name, key="tpl_save"):
        try:
            version = save_template(store, actor, name, subject, body_text, body_html)
        except (TemplateProblems, PermissionDenied) as exc:
            st.error(escape_markdown(str(exc)))
        else:
            st.session_state["templates_flash"] = f"Saved {name} version {version}."
            st.rerun()
    if versions and retire.button("Retire this template", key="tpl_retire",
                                  help="Nothing sends it any more; its versions stay."):
        try:
            version = retire_template(store, actor, name)
        except (OutreachError, PermissionDenied) as exc:
            st.error(escape_markdown(str(exc)))
        else:
            st.session_state["templates_flash"] = f"Retired {name} (version {version})."
            st.session_state.pop("tpl_choice", None)
            st.rerun()

# -- versions ------------------------------------------------------------------------------------------
st.subheader("Versions")
if versions:
    st.dataframe(pd.DataFrame([{"version": v.version, "saved by": v.created_by,
                                "saved at": v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "(the file)",
                                "retired": v.retired, "subject": v.subject} for v in reversed(versions)]),
                 hide_index=True, width="stretch")
    shown = st.selectbox("Show version", [v.version for v in reversed(versions)], key=f"tpl_show_{name}")
    old = next(v for v in versions if v.version == shown)
    st.text(f"Subject: {old.subject}")
    st.text(old.body_text)
    if old.body_html:
        st.code(old.body_html, language="html")
else:
    st.info("Not saved yet.")
