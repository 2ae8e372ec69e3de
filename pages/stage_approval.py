"""Manual dunning stages waiting for approval, each with "Approve and send" and "Skip", shown the
same way on the Worklist and on the Customer 360 (`collections.dunning_approval`)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from analytics.access.roles import Actor, PermissionDenied, may
from analytics.collections.dunning_approval import StageApprovalError, approve_stage, skip_stage
from analytics.collections.outreach.config import OutreachError
from analytics.store.connection import Store
from pages.plain_text import escape_markdown


def approve_or_skip(store: Store, actor: Actor, waiting: pd.DataFrame, as_of: date, currency: str, *,
                    key: str, flash: str) -> None:
    """Each stage in `waiting` (rows of `stages_waiting`) as text with its two buttons (for roles that
    act on customers); the outcome goes to `st.session_state[flash]` and the page reruns."""
    can_act = may(actor, "act_on_customers")
    for w in waiting.itertuples(index=False):
        stage = int(w.stage_no)
        with st.container(border=True):
            st.text(f"{w.customer_name} ({w.customer_id}) · stage {stage} {w.stage_name} · {w.channels}")
            st.text(f"{int(w.invoices)} invoice(s): {w.documents} · {w.open_amount:,.2f} {currency} open")
            if not can_act:
                continue
            approve, skip = st.columns(2)
            try:
                if approve.button("Approve and send", key=f"{key}_approve_{w.customer_id}_{stage}", type="primary",
                                  help="Every channel of the stage acts now, as an automatic stage's would"):
                    done = approve_stage(store, actor, str(w.customer_id), as_of, stage)
                    if done["status"] == "not sent":
                        st.error("Nothing could be sent; the stage still waits:")
                        st.text(done["channels"])  # the delivery's words, as text
                        continue
                    st.session_state[flash] = (f"Stage {stage} approved for {escape_markdown(w.customer_name)}: "
                                               f"{escape_markdown(done['channels'])}.")
                    st.rerun()
                if skip.button("Skip", key=f"{key}_skip_{w.customer_id}_{stage}",
                               help="Send nothing: the stage is recorded as waived and the invoices go on to the "
                                    "next stage"):
                    done = skip_stage(store, actor, str(w.customer_id), as_of, stage)
                    st.session_state[flash] = (f"Stage {stage} skipped for {escape_markdown(w.customer_name)} "
                                               f"({done['invoices']} invoice(s)): nothing sent.")
                    st.rerun()
            except (StageApprovalError, OutreachError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
