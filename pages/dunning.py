"""Dunning effectiveness (being built)."""

from pages.filters import dashboard, footer
from pages.session import get_store, require_page

require_page("dunning")
store = get_store()
view = dashboard(store, "Dunning effectiveness")
footer(store)
