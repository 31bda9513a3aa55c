"""nnviz, the Streamlit app: ``streamlit run app.py``.

Each page is one file in ``pages/`` (Streamlit's classic pages folder), served at its own URL:
``/Train``, ``/Explore?run=...&epoch=2&layer=conv1``, ``/Tuning_guide#step-4``. Every page
calls ``ui.shell.page`` first, which starts the training workers and draws the app's sidebar
of page links, so a link to any page works on a freshly started server. This entry file
starts the app the same way and opens the Home page.
"""

import streamlit as st

from ui import shell
from ui.i18n import use_language, with_lang
from ui.links import PAGES

use_language()  # the link's or browser's language goes on to Home
shell.start()
st.switch_page(PAGES["home"].path, query_params=with_lang(None))
