"""Streamlit pages: widgets, figures and calls into `analytics/`. No SQL here."""
