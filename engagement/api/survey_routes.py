"""`GET /s/{token}/{score}`: a survey email's link shows the answer page (never records);
`POST /s/{token}`: the page's plain form records the score and comment (answering again updates them).

No CSRF token: the signed token in the URL is the capability (only the email's recipient has it, and it
names one delivery), so a forged cross-site POST cannot name a survey. The pages send
`Referrer-Policy: no-referrer` so the token never leaks to other sites, and refuse to be framed.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from engagement import vocab
from engagement.api import body
from engagement.api.deps import Services, services
from engagement.api.unsubscribe_routes import PAGE
from engagement.delivery import survey_links
from engagement.responses import surveys

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
FORM_BYTES = 16 * 1024
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
}
QUESTIONS = {
    vocab.SurveyKind.NPS: "How likely are you to recommend us to a friend or colleague?",
    vocab.SurveyKind.CSAT: "How satisfied are you?",
}
STYLE = (
    "<style>fieldset{border:0;padding:0;margin:1rem 0;display:flex;flex-wrap:wrap;gap:.3rem}"
    "label.score{display:inline-block}label.score input{position:absolute;opacity:0}"
    "label.score span{display:inline-block;min-width:2.2rem;text-align:center;padding:.45rem .2rem;"
    "border:1px solid #2563eb;border-radius:6px;color:#2563eb;cursor:pointer}"
    "label.score input:checked+span{background:#2563eb;color:#fff}"
    "label.score input:focus-visible+span{outline:3px solid #93c5fd}"
    "textarea{width:100%;font:inherit;min-height:6rem;margin:.3rem 0 1rem}</style>"
)


def _page(svc: Services, title: str, content: str, status: int = 200) -> HTMLResponse:
    company = svc.settings.company
    html = PAGE.format(
        title=escape(title),
        body=STYLE + content,
        company=escape(company.name),
        address=escape(company.postal_address),
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _refused(svc: Services, status: int, message: str) -> HTMLResponse:
    return _page(svc, "Survey", f"<h1>{escape(message)}</h1><p>Nothing was recorded.</p>", status)


def _survey(svc: Services, token: str) -> surveys.Survey | HTMLResponse:
    """The survey the token names, or the page saying why it cannot be answered."""
    try:
        link = survey_links.read_token(token, svc.settings.unsubscribe.secret, svc.clock.now())
    except survey_links.ExpiredSurveyLink:
        return _refused(svc, 410, "This survey link has expired.")
    except survey_links.BadSurveyLink:
        return _refused(svc, 404, "This survey link is not valid.")
    with svc.db.begin() as conn:
        found = surveys.find(conn, link.delivery_id)
    return found if found is not None else _refused(svc, 404, "This survey is no longer open.")


def _form(
    svc: Services, token: str, survey: surveys.Survey, score: int | None, comment: str | None
) -> HTMLResponse:
    kind = vocab.SurveyKind(survey.kind)
    buttons = "".join(
        f'<label class="score"><input type="radio" name="score" value="{n}" required'
        f"{' checked' if n == score else ''}><span>{n}</span></label>"
        for n in survey_links.scale(kind)
    )
    content = (
        f"<h1>{escape(QUESTIONS[kind])}</h1>"
        f'<form method="post" action="/s/{escape(token)}">'
        f'<fieldset aria-label="Your score">{buttons}</fieldset>'
        '<label for="comment">What is the main reason for your score? (optional)</label>'
        f'<textarea id="comment" name="comment" maxlength="{svc.settings.surveys.comment_chars}">'
        f"{escape(comment or '')}</textarea>"
        "<button type=submit>Send my answer</button></form>"
    )
    return _page(svc, "Your answer", content)


@router.get("/s/{token}/{score}", response_class=HTMLResponse)
def answer_page(token: str, score: str, svc: Svc) -> HTMLResponse:
    """The answer page with `score` chosen and the comment box; records nothing (mail scanners open links)."""
    found = _survey(svc, token)
    if isinstance(found, HTMLResponse):
        return found
    try:
        chosen = surveys.check(found.kind, score, None, svc.settings.surveys.comment_chars).score
    except surveys.AnswerError as exc:
        return _refused(svc, 422, f"{exc.field}: {exc.message}")
    with svc.db.begin() as conn:
        before = surveys.current(conn, found.delivery_id)
    return _form(svc, token, found, chosen, before[1] if before else None)


@router.post("/s/{token}", response_class=HTMLResponse)
async def answer(token: str, request: Request, svc: Svc) -> HTMLResponse:
    """Record the page's form (`score`, `comment`); a second answer replaces the first."""
    raw = await body.read(request, FORM_BYTES, "a survey answer")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _refused(svc, 400, "The answer could not be read.")
    found = _survey(svc, token)
    if isinstance(found, HTMLResponse):
        return found
    try:
        checked = surveys.check(
            found.kind,
            fields.get("score", [None])[-1],
            fields.get("comment", [None])[-1],
            svc.settings.surveys.comment_chars,
        )
    except surveys.AnswerError as exc:
        return _refused(svc, 422, f"{exc.field}: {exc.message}")
    with svc.db.begin() as conn:
        first = surveys.record(svc.db, conn, found, checked, svc.clock.now(), "email")
    if first:
        svc.responses_arrived()
    changed = "" if first else "<p>Your earlier answer was replaced by this one.</p>"
    return _page(
        svc,
        "Thank you",
        f"<h1>Thank you</h1><p>We recorded your answer: <strong>{checked.score}</strong>.</p>{changed}",
    )
