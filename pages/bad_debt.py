"""Bad debt (being built)."""

from pages.filters import dashboard, footer
from pages.session import get_store, require_page

require_page("bad_debt")
store = get_store()
view = dashboard(store, "Bad debt")
footer(store)
