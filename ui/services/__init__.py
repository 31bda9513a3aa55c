"""App services that need no Streamlit: the job manager and the URL state."""
