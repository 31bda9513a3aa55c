"""nnviz, the Streamlit app: ``streamlit run app.py``.

This file only routes (like Streamlit's own ``hello`` app): each page is one file in ``pages/``
and draws what the ``nnviz`` library computes. URL paths are the page names: ``/Train``,
``/Explore?run=...&epoch=2&layer=conv1``, ``/Tuning_guide#step-4``.
"""

from pathlib import Path

import streamlit as st

from ui.common import job_manager

HERE = Path(__file__).parent
PAGES = [
    st.Page(HERE / "pages" / "0_Home.py", title="Home", icon="🏠", default=True),
    st.Page(HERE / "pages" / "1_Train.py", title="Train", icon="🏋️"),
    st.Page(HERE / "pages" / "2_Explore.py", title="Explore", icon="🔍"),
    st.Page(HERE / "pages" / "3_Compare.py", title="Compare", icon="⚖️"),
    st.Page(HERE / "pages" / "4_Runs.py", title="Runs", icon="🗂️"),
    st.Page(HERE / "pages" / "5_Tuning_guide.py", title="Tuning guide", icon="🎛️"),
    st.Page(HERE / "pages" / "6_Overview.py", title="Overview", icon="📋"),
]

job_manager()  # start the training workers on the first visit to any page (a shared link too)
st.navigation(PAGES).run()
