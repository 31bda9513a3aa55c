"""Who may do what on a shared server: the rules alone (no Streamlit, no state).

A class shares one server: a teacher at the projector and thirty students, each in their own
browser session. The rules:

- A session **owns** the jobs it queued and the runs those jobs trained (or the runs it
  imported). It may cancel its jobs and delete its runs.
- **Lesson runs** (a run whose config is exactly a lesson preset's) belong to nobody: every
  session may open them, none may delete them, whoever queued the training.
- Everybody else's runs and jobs are read-only to a session, and are not listed to it: it sees
  them only when a link names them (a link is how a run is shared).
- Runs that no session made (trained with the CLI or ``nnviz warm``, copied into the runs
  folder) are the server's: listed to everyone like lessons, deleted only by the teacher. Who
  made which run survives restarts (``ui.services.jobs`` keeps it in the runs folder), so a
  restarted server does not turn old sessions' runs into public ones.
- The **teacher** (admin) enters the token the deployer set (``$NNVIZ_ADMIN_TOKEN`` or the
  Streamlit secret of that name) once per session; it unlocks cancelling and deleting anything
  and clearing the queue. Without a configured token nobody is admin. Tokens are compared with
  ``hmac.compare_digest`` (time independent of where they differ).

Owners are opaque session ids (``Actor.session``); ``None`` is the server itself (lesson
warm-up, the CLI), which owns nothing. ``SERVER_RUN`` marks the server's runs in these rules.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from nnviz.errors import NnvizError
from nnviz.i18n import t

ADMIN_TOKEN_ENV = "NNVIZ_ADMIN_TOKEN"
SERVER_RUN = ""  # the owner of a run that no session made (CLI, nnviz warm, a copied folder)


class NotAllowed(NnvizError):
    """A session tried to change work that is not its own."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a browser session (its id) and whether it entered the teacher token."""

    session: str | None   # None: the server itself (warm-up, tests, CLI)
    admin: bool = False


SERVER = Actor(None, admin=True)  # the app's own calls (warm-up, shut-down)


def configured_token(secrets: Mapping[str, object] | None = None,
                     environ: Mapping[str, str] | None = None) -> str | None:
    """The teacher token the deployer set: the environment first, then Streamlit's secrets."""
    environ = os.environ if environ is None else environ
    token = environ.get(ADMIN_TOKEN_ENV, "").strip()
    if not token and secrets is not None:
        try:
            token = str(secrets.get(ADMIN_TOKEN_ENV) or "").strip()
        except Exception:  # st.secrets raises when no secrets file exists
            token = ""
    return token or None


def token_ok(given: str | None, expected: str | None) -> bool:
    """True when a token was configured and ``given`` is exactly it."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))


@functools.lru_cache(maxsize=1)
def lesson_hashes() -> frozenset[str]:
    """Config hashes of every lesson preset (runs with these hashes are lesson runs)."""
    from nnviz.config import config_hash
    from nnviz.presets import PRESETS

    return frozenset(config_hash(p.config()) for p in PRESETS.values())


def is_lesson(config_hash: str | None) -> bool:
    """True for a lesson preset's config hash."""
    return bool(config_hash) and config_hash in lesson_hashes()


def owns(actor: Actor, owner: str | None) -> bool:
    """True when the actor's session is the (known) owner."""
    return bool(actor.session) and bool(owner) and owner == actor.session


def may_cancel(actor: Actor, owner: str | None) -> bool:
    """A job may be cancelled by its owner and by the teacher."""
    return actor.admin or owns(actor, owner)


def may_delete(actor: Actor, owner: str | None, lesson: bool) -> bool:
    """A run may be deleted (or stopped) by its owner unless it is a lesson; the teacher always."""
    return actor.admin or (not lesson and owns(actor, owner))


def may_list(actor: Actor, owner: str | None, lesson: bool) -> bool:
    """Runs listed to a session: lessons, the server's and its own (the teacher sees all)."""
    return actor.admin or lesson or owner == SERVER_RUN or owns(actor, owner)


def check_cancel(actor: Actor, owner: str | None) -> None:
    """NotAllowed unless ``may_cancel``."""
    if not may_cancel(actor, owner):
        raise NotAllowed(t("This training was started by someone else, so only they (or the "
                           "teacher) can cancel it."))


def check_delete(actor: Actor, owner: str | None, lesson: bool) -> None:
    """NotAllowed unless ``may_delete``."""
    if may_delete(actor, owner, lesson):
        return
    if lesson:
        raise NotAllowed(t("Lesson runs are shared by the whole class: only the teacher can "
                           "delete or stop them."))
    raise NotAllowed(t("This run was trained by someone else, so only they (or the teacher) "
                       "can delete or stop it."))
