"""Streamlit helpers shared by the pages.

Besides pages/, this is the only package that imports streamlit.
"""
