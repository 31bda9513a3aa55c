"""The app's pages (each path defined here once) and links between them: page links, the
switch to Explore, the app's address and the share boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from nnviz.i18n import N_, t
from ui.i18n import with_lang
from ui.services.jobs import JobInfo
from ui.services.urlstate import view_to_query
from ui.state import JOB_KEY
from ui.text import literal


@dataclass(frozen=True)
class Page:
    """One page of the app: its file (relative to app.py), sidebar title and icon."""

    path: str
    title: str
    icon: str

    @property
    def url_name(self) -> str:
        """The URL path Streamlit gives the file: ``pages/2_Explore.py`` -> ``Explore``."""
        head, _, rest = Path(self.path).stem.partition("_")
        return rest if head.isdigit() and rest else Path(self.path).stem


PAGES = {
    "home": Page("pages/0_Home.py", N_("Home"), ":material/home:"),
    "train": Page("pages/1_Train.py", N_("Train"), ":material/model_training:"),
    "explore": Page("pages/2_Explore.py", N_("Explore"), ":material/search:"),
    "compare": Page("pages/3_Compare.py", N_("Compare"), ":material/compare:"),
    "runs": Page("pages/4_Runs.py", N_("Runs"), ":material/folder_open:"),
    "tuning": Page("pages/5_Tuning_guide.py", N_("Tuning guide"), ":material/tune:"),
    "overview": Page("pages/6_Overview.py", N_("Overview"), ":material/table_rows:"),
}
EXPLORE_PAGE = PAGES["explore"].path


def page_link(page: str, label: str | None = None, icon: str | None = None,
              query_params: dict[str, str] | None = None) -> None:
    """st.page_link to one of the app's pages (``page``: a key of PAGES), its label shown
    literally (it may hold a run's name).

    A page file run on its own (``AppTest.from_file``) has no other pages to link to: the
    link is then a caption naming the page.
    """
    target = PAGES[page]
    shown = literal(label or t(target.title))
    try:
        st.page_link(target.path, label=shown, icon=icon or target.icon,
                     query_params=with_lang(query_params))
    except StreamlitPageNotFoundError:
        st.caption(t("{link} (on the {page} page)", link=shown, page=t(target.title)))


def explore_link(run_id: str, label: str | None = None) -> None:
    """A link to the Explore page showing one run (the label is shown literally)."""
    page_link("explore", label=label or t("Open in Explore"),
              query_params=view_to_query(run_id=run_id))


def open_explore(run_id: str | None = None, job: JobInfo | None = None,
                 preset: str | None = None) -> None:
    """Switch to the Explore page for a run or job (remembered in session state and the URL)."""
    if job is not None:
        st.session_state[JOB_KEY] = job.job_id
        run_id = run_id or job.run_id
    st.switch_page(EXPLORE_PAGE, query_params=with_lang(view_to_query(run_id=run_id,
                                                                      preset=preset)))


def _browser_url() -> str:
    try:
        return st.context.url or ""
    except Exception:  # noqa: BLE001 - no browser session (AppTest, bare mode)
        return ""


def app_url(page: str | None = None) -> str:
    """The app's address in the user's browser for a page (a key of PAGES; None: Home)."""
    url = _browser_url().rstrip("/")
    if not url:
        return ""
    for other in PAGES.values():  # drop the current page's part of the path
        if url.endswith("/" + other.url_name):
            url = url[: -len(other.url_name) - 1]
            break
    return f"{url}/{PAGES[page].url_name}" if page else f"{url}/"


def share_link(params: dict[str, str], label: str | None = None,
               page: str | None = None) -> str:
    """Show a link to a page (a key of PAGES; None: this one) with these query parameters
    and the reader's language, as code the user can copy; returns it."""
    base = _browser_url() if page is None else app_url(page)
    query = urlencode(with_lang(params))
    label = label or t("Share these settings")
    link = f"{base}?{query}" if query else (base or "?")
    st.markdown(f"**{literal(label)}**")
    st.code(link, language=None, wrap_lines=True)
    return link
