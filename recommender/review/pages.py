"""The review app's HTML: the queue, an event's page and the refusal page, server-rendered, with a little
vanilla JavaScript for the keyboard (every action is also a plain form button, so a mouse works without it)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

from recommender.rank import Suggestion
from recommender.review.queue import REASONS, EventView, Queue
from recommender.wording import count

STYLE = """
.right { margin-left:auto; } .light { font-weight:400; } .small { font-size:13px; } .tight { margin-top:4px; }
.bar { display:flex; gap:16px; align-items:baseline; }
:root { --ink:#1d2330; --muted:#5c6475; --line:#d8dce4; --bg:#f6f7f9; --card:#fff; --accent:#1f5fbf;
  --ok:#1d7a46; --no:#b3261e; --focus:#ffd54a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink);
  background:var(--bg); }
header { background:#1d2330; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:baseline; }
header a { color:#fff; text-decoration:none; font-weight:600; }
header .counts { color:#c8d0e0; font-size:14px; }
main { max-width:1180px; margin:0 auto; padding:16px 24px 40px; }
h1 { font-size:20px; margin:6px 0 4px; line-height:1.3; }
.event h1 { font-size:17px; font-weight:650; }
h2 { font-size:15px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin:20px 0 8px; }
a { color:var(--accent); }
.muted { color:var(--muted); }
.keys { font-size:13px; color:var(--muted); background:var(--card); border:1px solid var(--line); border-radius:6px;
  padding:6px 10px; margin:10px 0; }
kbd { font:12px ui-monospace, monospace; border:1px solid #b9bfcc; border-bottom-width:2px; border-radius:4px;
  padding:0 5px; background:#fafbfc; color:var(--ink); }
table.queue { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); }
table.queue th, table.queue td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
  vertical-align:top; }
table.queue th { font-size:13px; color:var(--muted); font-weight:600; background:#eef0f4; }
table.queue td.num { text-align:right; white-space:nowrap; font-variant-numeric:tabular-nums; }
tr.sel td { background:#fff6cc; }
tr.sel td:first-child { box-shadow: inset 4px 0 0 #e0a800; }
.card.sel { outline:3px solid var(--focus); outline-offset:-3px; }
form.filters { display:flex; flex-wrap:wrap; gap:14px; align-items:end; background:var(--card);
  border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
form.filters label { display:flex; flex-direction:column; font-size:13px; color:var(--muted); gap:3px; }
form.filters label.check { flex-direction:row; align-items:center; gap:6px; color:var(--ink); }
input[type=text], input[type=date], select { font:inherit; padding:4px 6px; border:1px solid #b9bfcc;
  border-radius:4px; }
button { font:inherit; padding:5px 12px; border-radius:5px; border:1px solid #9aa3b5; background:#fff;
  cursor:pointer; }
button.accept { background:var(--ok); border-color:var(--ok); color:#fff; }
button.reject { background:#fff; border-color:var(--no); color:var(--no); }
.event { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:12px 16px; }
.event p { margin:6px 0; }
.cols { display:grid; grid-template-columns: minmax(0, 5fr) minmax(0, 7fr); gap:20px; }
ol.related { margin:0; padding-left:22px; font-size:14px; }
ol.related li { margin:4px 0; }
.ctx { color:var(--muted); font-style:italic; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; margin:0 0 10px; }
.card.curated { opacity:.6; }
.card .head { display:flex; gap:8px; align-items:baseline; }
.card .rank { font-weight:700; color:var(--muted); min-width:24px; }
.card .title { font-weight:600; text-decoration:none; }
.card .title:hover { text-decoration:underline; }
table.queue a { text-decoration:none; }
table.queue a:hover { text-decoration:underline; }
.why { font-size:13px; color:var(--muted); margin:4px 0 6px 32px; }
.why b { color:var(--ink); font-weight:600; }
.actions { margin-left:32px; display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.actions input[type=text] { flex:1 1 150px; min-width:120px; }
.actions button { padding:4px 10px; }
.badge { font-size:12px; border-radius:10px; padding:1px 8px; background:#e3e8f2; color:var(--ink); }
.badge.in { background:#dff3e6; color:var(--ok); }
.badge.skip { background:#fff4d6; }
.flash { background:#e6f0ff; border:1px solid #b8cff5; border-radius:6px; padding:8px 12px; margin:10px 0; }
.refused { background:#fdecea; border:1px solid #f1b0aa; border-radius:6px; padding:10px 14px; margin:10px 0; }
.reasons { display:none; font-size:13px; margin-left:32px; margin-top:6px; }
.card.rejecting .reasons { display:block; }
@media (max-width: 900px) { .cols { grid-template-columns: 1fr; } }
"""

QUEUE_KEYS = [("j / ↓", "next row"), ("k / ↑", "previous row"), ("Enter", "open event"), ("/", "filters")]
EVENT_KEYS = [
    ("j / ↓", "next suggestion"),
    ("k / ↑", "previous"),
    ("a", "accept"),
    ("e", "edit Context"),
    ("r", "reject (then 1-4 reason, 0 none)"),
    ("s", "skip"),
    ("u", "undo last"),
    ("n", "next event"),
    ("q", "queue"),
]

SCRIPT = (Path(__file__).parent / "keys.js").read_text(encoding="utf-8")
PAGE_SCRIPT = "const REASONS = [" + ", ".join(f"'{r}'" for r in REASONS) + "];" + SCRIPT


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def event_url(event_id: str) -> str:
    return "/event/" + quote(event_id, safe="/")


def _keys(keys: list[tuple[str, str]]) -> str:
    parts = []
    for key, what in keys:
        shown = " / ".join(f"<kbd>{escape(k.strip())}</kbd>" for k in key.split("/")) if key != "/" else "<kbd>/</kbd>"
        parts.append(f"{shown} {escape(what)}")
    return '<div class="keys" id="keys">Keys: ' + " &nbsp;·&nbsp; ".join(parts) + "</div>"


def _page(title: str, body: str, counts: str, csrf: str, can_undo: bool) -> str:
    undo = (
        f'<form class="undo right" method="post" action="/undo">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}"><button type="submit">Undo last (u)</button></form>'
        if can_undo
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>{escape(title)} · review</title><style>{STYLE}</style></head>
<body><header><a class="home" href="/">Review suggestions</a><span class="counts">{counts}</span>{undo}</header>
<main>{body}</main><script>{PAGE_SCRIPT}</script></body></html>"""


def _counts(queue: Queue) -> str:
    return (
        f'<span id="decided">{queue.decided:,}</span> decided · <span id="pending">{queue.pending:,}</span> pending'
        f" · {count(queue.total, 'event')} in the window"
    )


def queue_page(
    queue: Queue,
    csrf: str,
    can_undo: bool,
    since: dt.date | None,
    until: dt.date | None,
    no_related: bool,
    by_confidence: bool,
    flash: str = "",
) -> str:
    rows = []
    for row in queue.rows:
        related = "" if row.has_related else ' <span class="badge">no Related yet</span>'
        rows.append(
            f'<tr data-nav data-href="{escape(event_url(row.id))}"><td class="num">{row.date}</td>'
            f'<td><a href="{escape(event_url(row.id))}">{escape(_short(row.headline, 220))}</a>{related}</td>'
            f'<td class="num">{row.pending}</td><td class="num">{row.best:.2f}</td></tr>'
        )
    table = (
        '<table class="queue"><thead><tr><th>date</th><th>event</th><th>pending</th><th>best confidence</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="flash">No suggestion left to decide here.</p>'
    )
    partial = (
        f'<p class="muted">Suggestions computed for {queue.computed:,} of {queue.total:,} events so far (the rest are '
        "being computed; reload, or narrow the dates).</p>"
        if queue.computed < queue.total
        else ""
    )
    checked = " checked" if no_related else ""
    body = f"""
<h1>Queue <span class="muted light">· events with suggestions not yet decided</span></h1>
{f'<div class="flash">{escape(flash)}</div>' if flash else ""}
<form class="filters" method="get" action="/">
  <label>from <input type="date" name="since" value="{since or ""}"></label>
  <label>to <input type="date" name="until" value="{until or ""}"></label>
  <label class="check"><input type="checkbox" name="no_related" value="1"{checked}> no Related list yet</label>
  <label>sort <select name="sort"><option value="date"{"" if by_confidence else " selected"}>by date</option>
    <option value="confidence"{" selected" if by_confidence else ""}>by confidence</option></select></label>
  <button type="submit">Filter</button>
</form>
{_keys(QUEUE_KEYS)}
<p class="muted">{count(len(queue.rows), "event")} of the {queue.total:,} with {count(queue.pending, "suggestion")}
left to decide (the others have none left).</p>
{partial}{table}"""
    return _page("Queue", body, _counts(queue), csrf, can_undo)


def _why(s: Suggestion) -> str:
    parts = []
    if s.confidence is not None:
        parts.append(f"confidence <b>{s.confidence:.2f}</b>")
    parts.append(f"score <b>{s.score:.3f}</b>")
    if s.signals is not None and s.signals.days_apart is not None:
        parts.append(f"{count(s.signals.days_apart, 'day')} apart")
    if s.context:
        parts.append("shared names: <b>" + escape(", ".join(s.context)) + "</b>")
    if s.pinned:
        parts.append("pinned in editors.toml")
    return " · ".join(parts)


def _related_item(text: str, context: tuple[str, ...], event_id: str | None) -> str:
    link = f'<a href="{escape(event_url(event_id))}">{escape(text)}</a>' if event_id else escape(text)
    missing = "" if event_id else ' <span class="muted">(not in the index)</span>'
    ctx = f' <span class="ctx">{escape(", ".join(context))}</span>' if context else ""
    return f"<li>{link}{missing}{ctx}</li>"


def _card(s: Suggestion, view: EventView, csrf: str, skipped: bool, context: str | None) -> str:
    """A suggestion's card: with its decision form, or marked as in Related. `context`: as the editor left it
    (a decision refused), else the names it shares."""
    title = f'<a class="title" href="{escape(event_url(s.id))}">{escape(_short(s.headline, 300))}</a>'
    head = f'<div class="head"><span class="rank">{s.rank}.</span><span>{s.date} · {title}'
    if s.curated:
        return (
            f'<div class="card curated">{head} <span class="badge in">in Related</span></span></div>'
            f'<div class="why">{_why(s)}</div></div>'
        )
    skip_badge = ' <span class="badge skip">skipped</span>' if skipped else ""
    context = ", ".join(s.context) if context is None else context
    reasons = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in REASONS)
    keys = " ".join(f"<kbd>{i + 1}</kbd> {escape(r)}" for i, r in enumerate(REASONS))
    return f"""<div class="card" data-nav data-id="{escape(s.id)}">{head}{skip_badge}</span></div>
<div class="why">{_why(s)}</div>
<form class="decide" method="post" action="/decide">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="event" value="{escape(view.event.id)}">
<input type="hidden" name="candidate" value="{escape(s.id)}">
<input type="hidden" name="digest" value="{escape(view.digest)}">
<input type="hidden" name="rank" value="{s.rank}"><input type="hidden" name="score" value="{s.score}">
<input type="hidden" name="confidence" value="{"" if s.confidence is None else s.confidence}">
<input type="hidden" name="action" value="accept">
<div class="actions"><label class="muted" for="ctx-{s.rank}">Context</label>
<input type="text" id="ctx-{s.rank}" name="context" value="{escape(context)}" aria-label="Context for {escape(s.id)}">
<button type="submit" class="accept" data-action="accept" name="action" value="accept">Accept (a)</button>
<button type="submit" class="reject" data-action="reject" name="action" value="reject">Reject (r)</button>
<button type="submit" data-action="skip" name="action" value="skip">Skip (s)</button></div>
<div class="reasons">Why? {keys} · <kbd>0</kbd> no reason ·
<select name="reason" aria-label="reason"><option value="">(no reason)</option>{reasons}</select>
<button type="submit" class="reject" name="action" value="reject">Reject</button></div>
</form></div>"""


def event_page(
    view: EventView,
    suggestions: list[Suggestion],
    pending: list[Suggestion],
    skipped: set[str],
    queue: Queue,
    csrf: str,
    can_undo: bool,
    next_url: str | None,
    flash: str = "",
    refused: str = "",
    kept: dict[str, str] | None = None,
) -> str:
    event = view.event
    sources = "".join(
        f'<li><a href="{escape(s.url)}" rel="noreferrer noopener" target="_blank">{escape(s.name)}</a></li>'
        if s.url
        else f"<li>{escape(s.name)}</li>"
        for s in event.sources
    )
    links = zip(event.related, view.curated, strict=True)
    related = "".join(_related_item(link.text, link.context, i) for link, i in links)
    related_html = f'<ol class="related" id="related">{related}</ol>' if related else '<p class="muted">none yet</p>'
    kept = kept or {}
    cards = [
        _card(s, view, csrf, s.id in skipped, kept.get(s.id)) for s in pending + [s for s in suggestions if s.curated]
    ]
    if not pending:
        cards.insert(0, '<p class="flash">Every suggestion for this event is decided.</p>')
    summary = "".join(f"<p>{escape(p)}</p>" for p in event.summary.split("\n\n") if p)
    nxt = f'<a class="next" href="{escape(next_url)}">next event (n) →</a>' if next_url else ""
    notice = f'<div class="refused" id="refused" role="alert">{escape(refused)}</div>' if refused else ""
    notice += f'<div class="flash" id="flash">{escape(flash)}</div>' if flash else ""
    body = f"""
<div class="bar"><a href="/">← queue (q)</a>
<span class="muted">{event.date}</span><span class="right">{nxt}</span></div>
{notice}
<div class="cols"><section>
<div class="event"><h1 id="headline">{escape(event.headline)}</h1>
<div class="muted small">{escape(event.id)}</div>{summary}
<h2>Sources</h2><ul>{sources or "<li class=muted>none</li>"}</ul>
<h2>Related ({len(event.related)})</h2>{related_html}</div>
</section><section>
<h2 class="tight">Suggestions ({len(pending)} to decide)</h2>
{_keys(EVENT_KEYS)}
{"".join(cards)}
</section></div>"""
    return _page(event.headline[:80], body, _counts(queue), csrf, can_undo)


def message_page(title: str, message: str, csrf: str, back: str = "/") -> str:
    alert = f'<div class="refused" role="alert">{escape(message)}</div>'
    body = f'<h1>{escape(title)}</h1>{alert}<a href="{escape(back)}">back</a>'
    return _page(title, body, "", csrf, False)


def query_string(**params: object) -> str:
    kept = {k: str(v) for k, v in params.items() if v not in (None, "", False)}
    return ("?" + urlencode(kept)) if kept else ""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


# every page's Content-Security-Policy: its own inline style and script (by hash) and nothing else; forms post
# to this server only; no frames, plugins or base URL
CSP = (
    f"default-src 'none'; script-src {_sha256(PAGE_SCRIPT)}; style-src {_sha256(STYLE)}; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
