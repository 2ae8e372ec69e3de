"""A person's decision on uncertain messages (the server took them but never confirmed them),
shown the same way on Customer 360 and Bulk outreach."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.access.roles import Actor, PermissionDenied
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import mark_sent, send_again
from analytics.store.connection import Store
from pages.plain_text import escape_markdown


def decide_uncertain(store: Store, actor: Actor, undecided: pd.DataFrame, config: OutreachConfig, *,
                     key: str, flash: str) -> None:
    """Each uncertain message in `undecided` (rows of `outreach.outbox`) as text, with its reason and
    the two choices; a decision is stored in `st.session_state[flash]` and the page reruns."""
    if undecided.empty:
        return
    st.warning(f"{len(undecided)} message(s) may have reached the customer: the mail server received them but "
               "never confirmed it, so they are not retried on their own. Check with the recipient if you can, "
               "then choose for each: Mark sent (it arrived) or Send again (same Message-ID).")
    for m in undecided.itertuples(index=False):
        message_id = int(m.message_id)
        with st.container(border=True):
            whom = m.customer_id if isinstance(m.customer_id, str) else "staff, no customer"
            st.text(f"Message {message_id} to {m.to_address} ({whom}): {m.subject}")
            st.text(f"Why uncertain: {m.last_error}")
            mark, again = st.columns(2)
            try:
                if mark.button("Mark sent", key=f"{key}_mark_sent_{message_id}"):
                    mark_sent(store, actor, message_id)
                    st.session_state[flash] = f"Message {message_id} marked sent."
                    st.rerun()
                if again.button("Send again", key=f"{key}_send_again_{message_id}"):
                    result = send_again(store, actor, message_id, config=config)
                    if result["status"] == "sent":
                        st.session_state[flash] = f"Message {message_id} sent again."
                        st.rerun()
                    st.error(f"Message {message_id} was not sent again ({result['status']}):")
                    st.text(str(result["reason"]))  # the re-check's or the server's words, as text
            except (OutreachError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
