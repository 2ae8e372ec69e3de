"""Customer 360: the numbers, aging, open invoices, ledger, contacts and one timeline, with the
outreach and follow-up panels. Reads the customer from the URL (`?customer=ID`)."""

from datetime import timedelta

import streamlit as st

from analytics.access.portal_tokens import PortalLinkError, link_url
from analytics.access.roles import PermissionDenied, may
from analytics.collections.assignments import collectors
from analytics.collections.contacts import (
    CONTACT_CHANNELS,
    CONTACT_ROLES,
    ContactError,
    add_contact,
    customer_contacts,
    deactivate_contact,
    edit_contact,
    mark_bounced,
)
from analytics.collections.customer_360 import (
    balance_line,
    customer_aging,
    customer_header,
    customer_ledger,
    find_customers,
    open_invoices,
    timeline,
)
from analytics.collections.disputes import DEFAULT_ANSWER_DAYS, DISPUTE_ANSWER_DAYS
from analytics.collections.dunning_approval import stages_waiting
from analytics.collections.dunning_channels import letter_of_task
from analytics.collections.followups import (
    CALL_OUTCOMES,
    DISPUTE_DEPARTMENTS,
    ESCALATION_TARGETS,
    FollowUpError,
    add_note,
    add_task,
    complete_task,
    escalate,
    log_call,
    open_dispute,
    promise_to_pay,
    reassign,
    refresh_promise_statuses,
    resolve_dispute,
)
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import retry_queued, send_now
from analytics.collections.outreach.message_templates import template_names
from analytics.collections.outreach.outbox import emails_in_window, last_contact, outbox
from analytics.collections.outreach.queue import preview
from analytics.collections.requests import (
    DEFAULT_DEPARTMENT,
    REQUEST_DEPARTMENTS,
    REQUEST_TYPES,
    RequestError,
    raise_request,
)
from analytics.collections.statements import statement_items, statement_pdf
from analytics.collections.worklist import default_as_of, next_customer
from analytics.portal.account import PortalError, reply_to_portal
from analytics.portal.links import live_links, mint_link, revoke_links
from pages.action_keys import action_done, action_key
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.stage_approval import approve_or_skip
from pages.tables import data_table
from pages.uncertain_messages import decide_uncertain

actor = require_page("customer")
store = get_store()


def done(name: str, key: str, message: str) -> None:
    """Mark the action done and show `message` (markdown: user text in it is escaped) after the rerun."""
    action_done(name, key)
    st.session_state["customer_flash"] = message
    for field in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{name}_")]:
        del st.session_state[field]  # the form comes back empty
    st.rerun()


st.title("Customer 360")

# -- which customer ---------------------------------------------------------------------------------
search = st.text_input("Find a customer (name or id)", key="customer_search")
if search.strip():
    found = find_customers(store, search)
    if found.empty:
        st.info(f"No customer matches {escape_markdown(repr(search))}.")
    else:
        pick = st.selectbox("Matches", found["customer_id"].tolist(), key="customer_pick",
                            format_func=lambda c: f"{c} · {found.set_index('customer_id').loc[c, 'name']}")
        if st.button("Open", key="customer_open"):
            st.query_params["customer"] = pick
            st.rerun()
customer_id = st.query_params.get("customer")
if not customer_id:
    st.info("Search for a customer, or open one from the worklist.")
    st.stop()

as_of = default_as_of(store)
refresh_promise_statuses(store, as_of)

# -- "Next item": opened from the worklist, walk it without going back --------------------------------
walk = st.session_state.get("worklist_walk")
if walk and st.button("Next item", icon=":material/skip_next:", key="customer_next_item",
                      help="The top customer of the worklist (recomputed), passing over those opened from it"):
    walk["seen"] = [*walk["seen"], customer_id]
    following = next_customer(store, walk["as_of"], walk["collector"], walk["seen"])
    if following is None:
        st.session_state.pop("worklist_walk", None)
        st.session_state["worklist_flash"] = "You have walked the whole list."
        st.switch_page("pages/worklist.py")
    st.query_params["customer"] = following
    st.rerun()
head = customer_header(store, customer_id, as_of)
if head is None:
    st.error(f"There is no customer {escape_markdown(repr(customer_id))}.")
    st.stop()
cur = escape_markdown(head["currency"])  # imported text, shown only in markdown (labels, help, messages)
if flash := st.session_state.pop("customer_flash", None):
    st.success(flash)

# -- header -------------------------------------------------------------------------------------------
st.subheader(f"{escape_markdown(head['name'])} ({escape_markdown(customer_id)})")
head_text = {k: escape_markdown(head[k] or default) for k, default in (
    ("segment", ""), ("collector", "—"), ("sales_rep", "—"), ("risk_class", "not rated"))}
st.caption(f"As of {as_of} · {head_text['segment']} · status **{escape_markdown(head['status'].replace('_', ' '))}** · "
           f"owner {head_text['collector']} · sales rep {head_text['sales_rep']} · "
           f"risk {head_text['risk_class']} · terms {head['payment_terms_days']} days")
m = st.columns(3) + st.columns(3)
m[0].metric(f"Balance ({cur})", f"{head['balance']:,.0f}", help=f"{head['balance']:,.2f} {cur}")
m[1].metric(f"Overdue ({cur})", f"{head['overdue']:,.0f}", help=f"{head['overdue']:,.2f} {cur}")
m[2].metric(f"Credit limit ({cur})", "—" if head["credit_limit"] is None else f"{head['credit_limit']:,.0f}")
m[3].metric("DSO (days)", "—" if head["dso"] is None else f"{head['dso']:.0f}",
            help="Open invoices ÷ invoices of the last 90 days × 90.")
m[4].metric("Average days late", "—" if head["avg_days_late"] is None else f"{head['avg_days_late']:.1f}",
            help="Amount-weighted, payments applied in the last 365 days.")
m[5].metric("Open invoices", head["open_invoices"])
events = timeline(store, customer_id)
open_tasks = events[(events["kind"] == "task") & (events["status"] == "open")] if len(events) else events
for task in open_tasks.itertuples(index=False):
    line, button = st.columns([6, 1])
    line.text(f"Open task, due {task.due_date:%Y-%m-%d}: {task.subject}")
    if (letter := letter_of_task(task.body)) is not None:  # a dunning letter to print and post
        line.download_button("Letter to post (PDF)", key=f"header_task_letter_{int(task.activity_id)}",
                             data=statement_pdf(head["name"], customer_id, head["currency"],
                                                statement_items(store, customer_id, as_of), as_of, letter=letter),
                             file_name=f"letter-{customer_id}-{task.due_date:%Y-%m-%d}.pdf", mime="application/pdf")
    if button.button("Done", key=f"header_task_done_{int(task.activity_id)}"):
        try:
            complete_task(store, actor, int(task.activity_id))  # a second click finds it done: no write
        except (FollowUpError, PermissionDenied) as exc:
            st.error(escape_markdown(exc))
        else:
            st.session_state["customer_flash"] = "Task completed."
            st.rerun()
waiting = stages_waiting(store, as_of, customer_id=customer_id)  # manual dunning stages due: approve or skip
if len(waiting):
    st.markdown("**Dunning stages waiting for approval**")
    approve_or_skip(store, actor, waiting, as_of, head["currency"], key="customer", flash="customer_flash")

tabs = st.tabs(["Timeline", "Open invoices", "Ledger", "Contacts", "Outreach", "Follow-up"], key="customer_tab",
               on_change="rerun")  # the chosen tab stays chosen after a submit

# -- timeline ---------------------------------------------------------------------------------------
with tabs[0]:
    if events.empty:
        st.info("No activity yet.")
    else:
        lines = []
        for e in events.head(30).itertuples(index=False):
            extra = " · ".join(str(v) for v in (e.outcome, e.status) if isinstance(v, str) and v)
            lines.append(f"- `{e.occurred_at:%Y-%m-%d %H:%M}` **{escape_markdown(e.kind)}** "
                         f"by {escape_markdown(e.author)}"
                         + (f" ({escape_markdown(e.department)})" if isinstance(e.department, str) else "")
                         + f": {escape_markdown(e.subject) if isinstance(e.subject, str) else ''}"
                         + (f" · _{escape_markdown(extra)}_" if extra else ""))
        st.markdown("\n".join(lines))
        with st.expander(f"All {len(events)} events as a table"):
            data_table(events[["occurred_at", "kind", "author", "department", "subject", "outcome", "status",
                                 "amount", "due_date", "reason", "body"]], hide_index=True, width="stretch",
                         column_config={"occurred_at": st.column_config.DatetimeColumn("When",
                                                                                     format="YYYY-MM-DD HH:mm")})
    # -- a request to another department (address change, PO number, ...): it lands in their queue
    if may(actor, "raise_requests"):
        with st.expander("Request to another department"), st.form("request_form", clear_on_submit=True):
            c1, c2, c3 = st.columns(3)
            r_type = c1.selectbox("Request", list(REQUEST_TYPES), format_func=REQUEST_TYPES.get, key="request_type")
            r_department = c2.selectbox("Department", [None, *REQUEST_DEPARTMENTS], key="request_department",
                                        format_func=lambda d: d or "by type")
            r_due = c3.date_input("Due (empty: by type)", value=None, min_value=as_of, key="request_due")
            r_subject = st.text_input("Subject", key="request_subject",
                                      placeholder="e.g. New delivery address: 12 Harbour Road")
            r_details = st.text_area("Details", key="request_details")
            if st.form_submit_button("Raise request"):
                r_key = action_key("request", customer_id, r_type, r_department, r_due, r_subject, r_details)
                try:
                    request_id = raise_request(store, actor, customer_id, r_type, r_subject, details=r_details,
                                               department=r_department, due_date=r_due, today=as_of,
                                               idempotency_key=r_key)
                except (RequestError, PermissionDenied) as exc:
                    st.error(escape_markdown(exc))
                else:
                    done("request", r_key, f"Request #{request_id} raised: "
                         f"{REQUEST_TYPES[r_type]}, to {r_department or DEFAULT_DEPARTMENT[r_type]}.")
    # -- the customer's portal thread: the reply shows there (kind portal_message, out)
    if may(actor, "act_on_customers"):
        with st.expander("Reply to the portal"), st.form("portal_reply_form", clear_on_submit=True):
            reply_body = st.text_area("Reply (the customer reads it in the portal)", key="portal_reply_body")
            if st.form_submit_button("Send reply"):
                reply_key = action_key("portal_reply", customer_id, reply_body)
                try:
                    reply_to_portal(store, actor, customer_id, reply_body, idempotency_key=reply_key)
                except (PortalError, PermissionDenied) as exc:
                    st.error(escape_markdown(exc))
                else:
                    done("portal_reply", reply_key, "Reply sent to the portal.")

# -- aging and open invoices -------------------------------------------------------------------------
with tabs[1]:
    aging = customer_aging(store, customer_id, as_of)
    data_table(aging.set_index("bucket").T, width="stretch")
    invoices = open_invoices(store, customer_id, as_of)
    data_table(invoices.drop(columns=["entry_id"]), hide_index=True, width="stretch")

# -- ledger and contacts -------------------------------------------------------------------------------
with tabs[2]:
    data_table(customer_ledger(store, customer_id), hide_index=True, width="stretch")
with tabs[3]:
    contacts = customer_contacts(store, customer_id)
    if contacts.empty:
        st.warning("No contacts: outreach cannot reach this customer.")
    data_table(contacts, hide_index=True, width="stretch")
    if may(actor, "manage_contacts"):

        def save_contact(message: str, write) -> None:  # noqa: ANN001 - write()
            try:
                changed = write()
            except (ContactError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["customer_flash"] = message if changed is not False else "Nothing to change."
                st.rerun()

        with st.form("contact_add_form", clear_on_submit=True):
            st.markdown("**Add a contact**")
            c1, c2, c3 = st.columns(3)
            new_name = c1.text_input("Name", key="contact_add_name")
            new_email = c2.text_input("Email", key="contact_add_email")
            new_phone = c3.text_input("Phone", key="contact_add_phone")
            c1, c2, c3 = st.columns(3)
            new_role = c1.selectbox("Role", CONTACT_ROLES, key="contact_add_role")
            new_channel = c2.selectbox("Preferred channel", CONTACT_CHANNELS, key="contact_add_channel")
            new_primary = c3.checkbox("Primary contact", key="contact_add_primary")
            if st.form_submit_button("Add contact"):
                save_contact("Contact added.", lambda: add_contact(
                    store, actor, customer_id, name=new_name, email=new_email, phone=new_phone, role=new_role,
                    preferred_channel=new_channel, is_primary=new_primary))
        if len(contacts):
            by_id = contacts.set_index("contact_id")
            pick = st.selectbox("Contact to change", by_id.index.astype(int).tolist(), key="contact_pick",
                                format_func=lambda i: f"{by_id.loc[i, 'name']} · {by_id.loc[i, 'email'] or 'no email'}")
            row = by_id.loc[pick]
            with st.form(f"contact_edit_form_{pick}"):
                c1, c2, c3 = st.columns(3)
                name = c1.text_input("Name", value=row["name"], key=f"contact_name_{pick}")
                mail = c2.text_input("Email", value=row["email"] or "", key=f"contact_email_{pick}")
                phone = c3.text_input("Phone", value=row["phone"] or "", key=f"contact_phone_{pick}")
                c1, c2, c3 = st.columns(3)
                role = c1.selectbox("Role", CONTACT_ROLES, key=f"contact_role_{pick}",
                                    index=CONTACT_ROLES.index(row["role"]) if row["role"] in CONTACT_ROLES else 4)
                channel = c2.selectbox("Preferred channel", CONTACT_CHANNELS, key=f"contact_channel_{pick}",
                                       index=CONTACT_CHANNELS.index(row["preferred_channel"])
                                       if row["preferred_channel"] in CONTACT_CHANNELS else 0)
                primary = c3.checkbox("Primary contact", value=bool(row["is_primary"]), key=f"contact_primary_{pick}")
                b1, b2, b3 = st.columns(3)
                if b1.form_submit_button("Save changes"):
                    save_contact("Contact saved.", lambda: edit_contact(
                        store, actor, pick, name=name, email=mail, phone=phone, role=role,
                        preferred_channel=channel, is_primary=primary))
                if b2.form_submit_button("Deactivate", disabled=not bool(row["active"])):
                    save_contact("Contact deactivated.", lambda: deactivate_contact(store, actor, pick))
                if b3.form_submit_button("Mark email bounced", disabled=not row["email"] or bool(row["bounced"])):
                    save_contact("Email marked as bounced: outreach no longer uses it.",
                                 lambda: mark_bounced(store, actor, pick))

# -- outreach panel ------------------------------------------------------------------------------------
with tabs[4]:
    config = OutreachConfig.from_settings()
    last = last_contact(store, customer_id)
    sent_recently = emails_in_window(store, customer_id, config)
    st.caption(("Last contact: " + (f"{escape_markdown(last['kind'])} by {escape_markdown(last['author'])} on "
                                    f"{last['occurred_at']:%Y-%m-%d %H:%M}" if last else "never"))
               + f" · emails sent or possibly sent in the last {config.frequency_window_days} days: "
               f"{sent_recently} of at most "
               f"{config.max_emails_per_customer} · delivery mode: {config.mode}")
    st.caption(escape_markdown(balance_line(head["balance"], head["open_invoices_amount"], head["unapplied"],
                                            head["currency"])) + ". A reminder lists only the invoices past due "
               "and not disputed or paused by a promise; a statement lists every open item.")
    if not may(actor, "act_on_customers"):
        st.info("Your role may read this account but not contact the customer.")
    else:
        names = template_names(store)  # files and templates made in the app, not retired
        template = st.selectbox("Template", names, key="outreach_template",
                                index=names.index("reminder_friendly") if "reminder_friendly" in names else 0)
        note = st.text_area("Personal note (optional)", key="outreach_note")
        attach = st.radio("Attach a statement of every open item", ["none", "pdf", "xlsx"], horizontal=True,
                          key="outreach_attach", format_func={"none": "No", "pdf": "PDF", "xlsx": "Excel"}.get)
        draft = preview(store, [customer_id], template, as_of, note, sender_name=actor.name or actor.username,
                        recheck_with=config)[0]  # the send's own re-check: a sendable preview is what goes out
        with st.expander("Preview", expanded=True):
            if draft.problem:
                st.warning(f"Cannot send: {escape_markdown(draft.problem)}.")
            st.markdown(f"**To:** {escape_markdown(draft.to_address or '—')}  \n"
                        f"**Subject:** {escape_markdown(draft.subject)}")
            st.code(draft.body, language=None)
        if st.button("Send", type="primary", disabled=bool(draft.problem), key="outreach_send"):
            key = action_key("outreach", customer_id, template, note, attach)
            try:
                result = send_now(store, actor, [customer_id], template, action_key=key, as_of=as_of, note=note,
                                  attach=None if attach == "none" else attach, config=config)
            except (OutreachError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                r = result.iloc[0]
                if r.status == "sent":
                    done("outreach", key,
                         f"Sent {escape_markdown(template)} to {escape_markdown(draft.to_address)}.")
                elif r.status == "uncertain":
                    action_done("outreach", key)
                    st.warning("Delivery uncertain: the mail server received the message but never confirmed it, "
                               "so it is not retried on its own. Decide below: Mark sent or Send again.")
                elif r.status in ("queued", "failed"):
                    st.error(f"Not delivered yet ({escape_markdown(r.status)}): {escape_markdown(r.reason)}. "
                             "It stays in the outbox; Send again "
                             "or retry later and it goes out once.")
                else:
                    action_done("outreach", key)
                    st.error(f"Not sent ({escape_markdown(r.status)}): {escape_markdown(r.reason)}")
        box = outbox(store, customer_id)
        if len(box):
            st.markdown("**Outbox for this customer**")
            data_table(box.drop(columns=["customer_id"]), hide_index=True, width="stretch")
            if box["status"].isin(["queued", "failed"]).any() and st.button("Retry queued messages", key="outreach_retry"):
                data_table(retry_queued(store, actor, config=config), hide_index=True)
            decide_uncertain(store, actor, box[box["status"] == "uncertain"], config, key="customer",
                             flash="customer_flash")
        # Portal link: made on demand, shown once (the store keeps only its hash), revocable all at once.
        st.markdown(f"**Portal link** · live links: {live_links(store, customer_id)}")
        link_left, link_right = st.columns(2)
        if link_left.button("Create a portal link", key="portal_link_create"):
            try:
                st.session_state["portal_link_shown"] = link_url(mint_link(store, actor, customer_id))
            except (PortalLinkError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
        if link_right.button("Revoke all portal links", key="portal_link_revoke"):
            st.success(f"{revoke_links(store, actor, customer_id)} portal link(s) revoked; their sessions ended.")
        if shown := st.session_state.pop("portal_link_shown", None):
            st.caption("Copy it now: it is shown only once.")
            st.code(shown, language=None)

# -- follow-up panel -----------------------------------------------------------------------------------
with tabs[5]:
    invoice_choices = {  # the open invoices; none is chosen by default (a dispute then asks)
        int(r.entry_id): f"{r.document_number} · {r.open_amount:,.2f} · {r.days_overdue} days" for r in
        invoices.itertuples(index=False)}
    today = as_of  # dates default from the list's as-of date, never the machine clock
    can_act, can_note = may(actor, "act_on_customers"), may(actor, "add_notes")

    def attempt(name: str, message: str, write, *content: object) -> None:  # noqa: ANN001 - write(key)
        key = action_key(name, customer_id, *content)
        try:
            write(key)
        except (FollowUpError, PermissionDenied) as exc:
            st.error(escape_markdown(exc))
        else:
            done(name, key, message)

    if can_note:
        with st.form("note_form", clear_on_submit=True):
            st.markdown("**Note**")
            body = st.text_area("Note", key="note_body")
            if st.form_submit_button("Add note"):
                attempt("note", "Note added.", lambda key: add_note(store, actor, customer_id, body,
                                                                    idempotency_key=key), body)
    if not can_act:
        st.info("Your role may add notes only.")
        st.stop()

    with st.form("call_form", clear_on_submit=True):
        st.markdown("**Log a call**")
        outcome = st.selectbox("Outcome", CALL_OUTCOMES, key="call_outcome")
        call_note = st.text_input("What was said", key="call_note")
        if st.form_submit_button("Log call"):
            attempt("call", f"Call logged ({outcome}).", lambda key: log_call(
                store, actor, customer_id, outcome, call_note, idempotency_key=key), outcome, call_note)

    with st.form("promise_form"):
        st.markdown("**Promise to pay**")
        c1, c2, c3 = st.columns(3)
        p_invoices = c1.multiselect("Invoices (none: the whole account)", list(invoice_choices),
                                    format_func=invoice_choices.get, key="promise_invoices")
        amount = c2.number_input(f"Amount ({cur})", min_value=0.0, value=float(max(head["overdue"], 0.0)),
                                 step=100.0, key="promise_amount")
        promised = c3.date_input("Promised date", value=today + timedelta(days=7), key="promise_date")
        pauses = st.checkbox("Pause dunning for these invoices until the promised date + 1 day (then, unpaid, the "
                             "promise is broken and dunning resumes at once)", value=True, key="promise_pauses")
        if st.form_submit_button("Record promise"):
            attempt("promise", f"Promise recorded: {amount:,.2f} {cur} by {promised}.", lambda key: promise_to_pay(
                store, actor, customer_id, amount or None, promised, entry_ids=p_invoices, pauses_dunning=pauses,
                today=today, idempotency_key=key), amount, promised, p_invoices, pauses)

    with st.form("dispute_form"):
        st.markdown("**Dispute**")
        c1, c2, c3 = st.columns(3)
        reason = c1.text_input("Reason", key="dispute_reason")
        d_amount = c2.number_input(f"Amount ({cur}; 0: the chosen invoices' open amount)", min_value=0.0, step=100.0,
                                   key="dispute_amount")
        department = c3.selectbox("Department to answer", DISPUTE_DEPARTMENTS, key="dispute_department")
        d_invoices = st.multiselect("Disputed invoices (only these leave reminders; the others continue)",
                                    list(invoice_choices), format_func=invoice_choices.get, key="dispute_invoices")
        c1, c2, c3 = st.columns(3)
        whole = c1.checkbox("Whole account (every invoice, no reminders at all)", key="dispute_whole")
        whole_sure = c2.checkbox("I confirm: dispute the whole account", key="dispute_whole_confirm")
        d_due = c3.date_input("Answer due", value=None, key="dispute_answer_due",
                              help=f"Blank: {as_of} + the department's days ("
                                   + ", ".join(f"{d} {n}" for d, n in DISPUTE_ANSWER_DAYS.items())
                                   + "). The dispute waits with the department until then.")
        if st.form_submit_button("Open dispute"):
            answer_due = d_due or today + timedelta(days=DISPUTE_ANSWER_DAYS.get(department, DEFAULT_ANSWER_DAYS))
            if whole and not whole_sure:
                st.error("A whole-account dispute stops every reminder to this customer: tick the confirmation too.")
            else:
                attempt("dispute", f"Dispute opened: {escape_markdown(department)} to answer by {answer_due}.",
                        lambda key: open_dispute(store, actor, customer_id, reason, d_amount or None, department,
                                                 entry_ids=d_invoices, whole_account=whole, answer_due=answer_due,
                                                 idempotency_key=key),
                        reason, d_amount, department, d_invoices, whole)
    disputes = events[(events["kind"] == "dispute") & (events["status"] == "open")] if len(events) else events
    if len(disputes):
        with st.form("resolve_form"):
            st.markdown("**Answer a dispute**")
            which = st.selectbox("Dispute", disputes["activity_id"].astype(int).tolist(), key="resolve_which",
                                 format_func=lambda a: str(disputes.set_index("activity_id").loc[a, "subject"]))
            resolution = st.radio("Resolution", ["resolved", "rejected"], horizontal=True, key="resolve_resolution")
            r_note = st.text_input("Note", key="resolve_note")
            if st.form_submit_button("Close dispute"):
                attempt("resolve", f"Dispute {resolution}.", lambda key: resolve_dispute(
                    store, actor, which, resolution, r_note, idempotency_key=key), which, resolution, r_note)

    with st.form("task_form"):
        st.markdown("**Task**")
        c1, c2, c3 = st.columns(3)
        subject = c1.text_input("Task", key="task_subject")
        due = c2.date_input("Due", value=today + timedelta(days=3), key="task_due")
        assignee = c3.text_input("Assignee (username)", value=actor.username, key="task_assignee")
        if st.form_submit_button("Add task"):
            attempt("task", "Task added.", lambda key: add_task(
                store, actor, customer_id, subject, due, assignee, today=today, idempotency_key=key),
                subject, due, assignee)

    with st.form("escalate_form"):
        st.markdown("**Escalate**")
        target = st.radio("To", list(ESCALATION_TARGETS), horizontal=True, key="escalate_target",
                          format_func={"manager": "a manager", "agency": "a collection agency"}.get)
        e_reason = st.text_input("Reason", key="escalate_reason")
        if st.form_submit_button("Escalate"):
            attempt("escalate", f"Escalated to {target}.", lambda key: escalate(
                store, actor, customer_id, target, e_reason, idempotency_key=key), target, e_reason)

    if may(actor, "assign_customers"):
        with st.form("reassign_form"):
            st.markdown("**Reassign**")
            team = collectors(store)["username"].tolist()
            new_owner = st.selectbox("New collector", team, key="reassign_to")
            a_reason = st.text_input("Reason", key="reassign_reason")
            if st.form_submit_button("Reassign"):
                attempt("reassign", f"Reassigned to {escape_markdown(new_owner)}.", lambda key: reassign(
                    store, actor, customer_id, new_owner, a_reason, idempotency_key=key), new_owner, a_reason)
