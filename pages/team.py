"""Team (being built)."""

from pages.filters import dashboard, footer
from pages.session import get_store, require_page

require_page("team")
store = get_store()
view = dashboard(store, "Team")
footer(store)
