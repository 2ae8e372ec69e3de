"""DSO & cash (being built)."""

from pages.filters import dashboard, footer
from pages.session import get_store, require_page

require_page("dso")
store = get_store()
view = dashboard(store, "DSO & cash")
footer(store)
