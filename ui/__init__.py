"""Streamlit glue for the dashboard: text catalog, sidebar, cached wrappers, tables and Plotly figures.

Layering: qcore <- ui <- app_pages/ and app.py. Nothing here does tensor math; it calls qcore and formats.
"""
