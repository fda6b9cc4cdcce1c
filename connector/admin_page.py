"""The admin page as one server-rendered HTML document: no scripts, no build chain, plain forms.

Every value from storage or the APIs goes through `esc` (html.escape, quotes included). The function
key the page was opened with is carried in the links and form actions (`?code=`), as Azure Functions
expects it; it is the caller's own key.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from connector.state.jobs import ORDER_JOB

if TYPE_CHECKING:
    from connector.admin_view import AdminView, QueueView

UI_PATH = "/api/admin/ui"
REPLAY_PATH = "/api/admin/ui/replay"

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#176317}.warn{color:#8a5a00}.fail,.error{color:#a11}.msg{background:#eef6ee;padding:.4rem .6rem}
.problem{background:#fbeaea;padding:.4rem .6rem}form.inline{display:inline}code{font-size:12px}
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def url(path: str, key: str | None, **params: object) -> str:
    query = {k: v for k, v in params.items() if v not in (None, "")}
    if key:
        query = {"code": key, **query}
    return path + ("?" + urlencode(query) if query else "")


def render(view: AdminView, *, key: str | None, message: str | None = None) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>ml-connector admin</title><style>{CSS}</style></head><body>",
        "<h1>ml-connector — operations</h1>",
    ]
    if message:
        parts.append(f"<p class=msg id=message>{esc(message)}</p>")
    parts += [f"<p class=problem>{esc(p)}</p>" for p in view.problems]
    parts.append(f"<p>Last poll checkpoint: <b id=last-poll>{esc(view.last_poll or 'never polled')}</b></p>")
    parts.append(_jobs(view))
    parts.append(_failed(view, key))
    parts += [_queue(q, key) for q in view.queues]
    parts.append(_trail(view, key))
    parts.append(_doctor(view, key))
    parts.append("</body></html>")
    return "\n".join(parts)


def _jobs(view: AdminView) -> str:
    states = ("queued", "running", "done", "failed")
    head = "".join(f"<th>{s}</th>" for s in states)
    rows = "".join(
        f"<tr><th>{esc(group)}</th>" + "".join(f"<td>{counts.get(s, 0)}</td>" for s in states) + "</tr>"
        for group, counts in view.jobs.items()
    )
    return f"<h2>Jobs by state</h2><table id=jobs><tr><th></th>{head}</tr>{rows}</table>"


def _replay_button(key: str | None, label: str, **fields: object) -> str:
    hidden = "".join(f"<input type=hidden name={esc(k)} value='{esc(v)}'>" for k, v in fields.items())
    return (
        f"<form class=inline method=post action='{esc(url(REPLAY_PATH, key))}'>{hidden}"
        f"<button type=submit>{esc(label)}</button></form>"
    )


def _failed(view: AdminView, key: str | None) -> str:
    if not view.failed:
        return "<h2>Failed jobs</h2><p id=failed-none>No failed jobs.</p>"
    rows = []
    for job in view.failed:
        action = (
            _replay_button(key, "Replay", deal_id=job.key)
            if job.kind == ORDER_JOB
            else "<small>replayed by the next master diff</small>"
        )
        subject = (
            f"<a href='{esc(url(UI_PATH, key, deal=job.key))}#trail'>deal {esc(job.key)}</a>"
            if job.kind == ORDER_JOB
            else esc(f"{job.kind} {job.key}")
        )
        rows.append(
            f"<tr data-job='{esc(job.kind)}/{esc(job.key)}'><td>{subject}</td><td class=fail>{esc(job.reason)}</td>"
            f"<td>{esc(job.attempts)}</td><td>{esc(job.updated)}</td><td>{action}</td></tr>"
        )
    all_button = _replay_button(key, "Replay all failed orders", failed="1")
    return (
        f"<h2>Failed jobs</h2><p>{all_button}</p><table id=failed><tr><th>job</th><th>reason</th><th>attempts</th>"
        f"<th>updated</th><th></th></tr>{''.join(rows)}</table>"
    )


def _queue(queue: QueueView, key: str | None) -> str:
    button = _replay_button(key, "Replay poison messages", poison="1") if queue.poison_depth else ""
    rows = "".join(
        f"<tr><td>{esc(m['subject'])}</td><td>{esc(m['inserted'])}</td><td>{esc(m['error'])}</td></tr>"
        for m in queue.poison
    )
    listing = f"<table><tr><th>message</th><th>parked</th><th>why</th></tr>{rows}</table>" if rows else ""
    return (
        f"<h2>Queue {esc(queue.name)}</h2><p>waiting: <b>{esc(queue.depth)}</b> · poison: "
        f"<b class='{'fail' if queue.poison_depth else ''}' data-poison='{esc(queue.name)}'>{esc(queue.poison_depth)}</b> "
        f"{button}</p>{listing}"
    )


def _trail(view: AdminView, key: str | None) -> str:
    form = (
        f"<form method=get action='{esc(UI_PATH)}'>"
        + (f"<input type=hidden name=code value='{esc(key)}'>" if key else "")
        + f"<label>Deal id <input name=deal id=deal-input inputmode=numeric value='{esc(view.deal_id or '')}'></label> "
        "<button type=submit>Show audit trail</button></form>"
    )
    if view.trail is None:
        return f"<h2 id=trail>Audit trail of a deal</h2>{form}"
    if not view.trail:
        return f"<h2 id=trail>Audit trail of a deal</h2>{form}<p>No audit entries for deal {esc(view.deal_id)}.</p>"
    rows = "".join(
        f"<tr class='{esc(e.level)}'><td>{esc(e.at.isoformat(timespec='seconds'))}</td><td>{esc(e.level)}</td>"
        f"<td>{esc(e.event)}</td><td><code>{esc(json.dumps(e.detail, default=str))}</code></td></tr>"
        for e in view.trail
    )
    return (
        f"<h2 id=trail>Audit trail of a deal</h2>{form}<table id=audit><tr><th>time</th><th>level</th><th>event</th>"
        f"<th>detail</th></tr>{rows}</table>"
    )


def _doctor(view: AdminView, key: str | None) -> str:
    link = f"<a id=run-doctor href='{esc(url(UI_PATH, key, doctor='1'))}#doctor'>Run the doctor</a>"
    if view.doctor is None:
        return f"<h2 id=doctor>Doctor</h2><p>{link} (checks settings and mapping against both systems; reads only).</p>"
    rows = "".join(
        f"<tr data-check='{esc(c.name)}'><td class='{esc(c.status)}'>{esc(c.status)}</td><td>{esc(c.name)}</td>"
        f"<td>{esc(c.detail)}</td><td>{esc(c.fix)}</td></tr>"
        for c in view.doctor.checks
    )
    counts = view.doctor.counts
    return (
        f"<h2 id=doctor>Doctor</h2><p>{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed · "
        f"{link}</p><table id=doctor-table><tr><th></th><th>check</th><th>finding</th><th>fix</th></tr>{rows}</table>"
    )
