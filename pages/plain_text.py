"""User and imported text, shown as text wherever Streamlit would read it as markdown.

Rule: every value that a person typed or a file brought in (names, notes, reasons, subjects,
addresses, usernames, filter values from the URL, messages that quote them) goes through
`escape_markdown` before it reaches a call that parses markdown: `st.markdown`, `st.write` of a
string, `st.title`/`st.header`/`st.subheader`/`st.caption`, `st.error`/`st.warning`/`st.info`/
`st.success`/`st.toast`, and the labels of buttons, page links, checkboxes, expanders, tabs,
metrics (label and value), progress texts, radio and segmented-control options, and widgets.
Otherwise a name such as `![x](http://host/x.png)` makes every viewer's browser fetch that URL.
Our own formatting stays markdown around the escaped part: f"**{escape_markdown(name)}**".

Not escaped (they never parse markdown, so a backslash would show): `st.text`, `st.code`,
dataframes and their cells, and the options of `st.selectbox` and `st.multiselect`, including
their `format_func` output (checked in chromium with Streamlit 1.67).

Left as is: a bare URL or email address becomes a link whose text is the address itself (GitHub-
flavoured markdown finds them in the text after escapes are read); a link fetches nothing.
"""

from __future__ import annotations

import re

# Every ASCII punctuation mark: CommonMark lets a backslash make any of them literal, which also
# stops Streamlit's own syntax (":material/icon:", ":red[...]", "$math$", ":emoji:", "->").
_MARKDOWN_SIGNS = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(value: object) -> str:
    """`value` as text that Streamlit's markdown shows literally, character for character."""
    return _MARKDOWN_SIGNS.sub(r"\\\1", str(value))
