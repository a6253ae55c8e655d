/*
 * engagement in-app nudges. Include once per page, for the signed-in contact:
 *
 *   <script src="https://ENGINE/static/nudges.js" data-contact="CONTACT_ID" data-token="TOKEN" defer></script>
 *
 * data-token   the contact's in-app token, minted by your backend: hex HMAC-SHA256(contact id, inapp.token_secret)
 * data-api     the engine's base URL (default: where this script came from)
 * data-target  a CSS selector to render into (default: a fixed panel at the bottom right)
 * data-limit   how many nudges to show at once (default 3)
 *
 * Shows each live nudge (title, body, call-to-action, close button), reports `seen` when shown,
 * `clicked` on the call-to-action (then follows its link) and `dismissed` on close. Texts are set with
 * textContent, never as HTML, and only http(s) links are followed. window.EngagementNudges.refresh()
 * reloads the inbox.
 *
 * A survey nudge (nudge.survey = {kind: nps|csat, comment}) shows its question with one button per score
 * (NPS 0-10, CSAT 1-5; real <button>s, so Tab, Enter and Space work), then the comment box if the survey
 * asks one, and sends {score, comment} to POST /v1/nudges/{id}/answer.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var attr = function (name) { return script.getAttribute("data-" + name); };
  var api = (attr("api") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var contact = attr("contact");
  var token = attr("token");
  var limit = parseInt(attr("limit") || "3", 10) || 3;
  var warn = function (error) { if (window.console) console.warn("nudges.js:", error); };
  if (!contact || !token) {
    warn("data-contact and data-token are required");
    return;
  }

  function call(method, path, body) {
    var headers = { Authorization: "Bearer " + token };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(api + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      mode: "cors",
      credentials: "omit",
      keepalive: method === "POST"
    }).then(function (response) {
      if (!response.ok) throw new Error(method + " " + path + ": HTTP " + response.status);
      return response.json();
    });
  }

  function report(id, kind) {
    return call("POST", "/v1/nudges/" + encodeURIComponent(id) + "/events", { kind: kind });
  }

  function answer(id, score, comment) {
    var body = { score: score };
    if (comment) body.comment = comment;
    return call("POST", "/v1/nudges/" + encodeURIComponent(id) + "/answer", body);
  }

  function showSurvey(nudge, card) {
    var scores = nudge.survey.kind === "nps" ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4, 5];
    var group = el("div", "engagement-survey-scores");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", nudge.title);
    var chosen = null;
    var form = null;
    var buttons = [];
    var done = function () {
      while (card.childNodes.length > 1) card.removeChild(card.lastChild); // keep the close button
      card.appendChild(el("p", "engagement-survey-thanks", "Thank you for your answer."));
    };
    var send = function (comment) {
      answer(nudge.id, chosen, comment).then(done, warn);
    };
    scores.forEach(function (score) {
      var button = el("button", "engagement-survey-score", score);
      button.type = "button";
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("data-score", String(score));
      button.addEventListener("click", function () {
        chosen = score;
        buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
        if (!nudge.survey.comment) { send(null); return; }
        if (form) return;
        form = el("form", "engagement-survey-comment");
        var label = el("label", "engagement-survey-comment-label", nudge.survey.comment);
        var box = document.createElement("textarea");
        box.id = "engagement-survey-comment-" + nudge.id;
        box.maxLength = 2000;
        label.htmlFor = box.id;
        var submit = el("button", "engagement-survey-send", "Send");
        submit.type = "submit";
        form.appendChild(label);
        form.appendChild(box);
        form.appendChild(submit);
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          send(box.value.trim() || null);
        });
        card.appendChild(form);
      });
      buttons.push(button);
      group.appendChild(button);
    });
    card.appendChild(group);
  }

  function safeUrl(raw) {
    var url;
    try { url = new URL(raw, location.href); } catch (e) { return null; }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function addStyle() {
    if (document.getElementById("engagement-nudges-style")) return;
    var style = document.createElement("style");
    style.id = "engagement-nudges-style";
    style.textContent =
      ".engagement-nudges{position:fixed;right:16px;bottom:16px;z-index:2147483000;width:320px;max-width:calc(100vw - 32px);font:14px/1.45 system-ui,sans-serif}" +
      ".engagement-nudges.inline{position:static;width:auto}" +
      ".engagement-nudge{position:relative;margin-top:8px;padding:14px 36px 14px 16px;border-radius:8px;background:#fff;color:#1f2937;box-shadow:0 4px 16px rgba(0,0,0,.15);border:1px solid #e5e7eb}" +
      ".engagement-nudge-title{display:block;font-weight:600;margin-bottom:4px}" +
      ".engagement-nudge-body{margin:0 0 10px}" +
      ".engagement-nudge-cta{display:inline-block;padding:6px 12px;border-radius:6px;background:#2563eb;color:#fff;text-decoration:none}" +
      ".engagement-survey-scores{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}" +
      ".engagement-survey-score{min-width:24px;padding:4px 6px;border:1px solid #2563eb;border-radius:4px;background:#fff;color:#2563eb;cursor:pointer;font:inherit}" +
      ".engagement-survey-score[aria-pressed=true]{background:#2563eb;color:#fff}" +
      ".engagement-survey-comment label{display:block;margin:10px 0 4px}" +
      ".engagement-survey-comment textarea{width:100%;box-sizing:border-box;min-height:60px;font:inherit}" +
      ".engagement-survey-send{margin-top:6px;padding:6px 12px;border:0;border-radius:6px;background:#2563eb;color:#fff;cursor:pointer;font:inherit}" +
      ".engagement-nudge-close{position:absolute;top:6px;right:8px;border:0;background:none;font-size:18px;line-height:1;color:#6b7280;cursor:pointer}";
    document.head.appendChild(style);
  }

  function container() {
    var selector = attr("target");
    var host = selector ? document.querySelector(selector) : null;
    var box = document.getElementById("engagement-nudges");
    if (!box) {
      box = el("div", host ? "engagement-nudges inline" : "engagement-nudges");
      box.id = "engagement-nudges";
      box.setAttribute("aria-live", "polite");
      (host || document.body).appendChild(box);
    }
    return box;
  }

  function show(nudge, box) {
    var card = el("div", "engagement-nudge");
    card.setAttribute("role", "note");
    card.setAttribute("data-nudge-id", nudge.id);
    var close = el("button", "engagement-nudge-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () {
      card.parentNode && card.parentNode.removeChild(card);
      report(nudge.id, "dismissed").catch(warn);
    });
    card.appendChild(close);
    card.appendChild(el("strong", "engagement-nudge-title", nudge.title));
    if (nudge.body) card.appendChild(el("p", "engagement-nudge-body", nudge.body));
    if (nudge.survey) showSurvey(nudge, card);
    var href = nudge.cta ? safeUrl(nudge.cta.url) : null;
    if (href) {
      var link = el("a", "engagement-nudge-cta", nudge.cta.label || "Open");
      link.href = href;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var gone = false;
        var go = function () { if (!gone) { gone = true; location.assign(href); } };
        report(nudge.id, "clicked").then(go, function (error) { warn(error); go(); });
        setTimeout(go, 1500); // never hold the user back for a slow engine
      });
      card.appendChild(link);
    }
    box.appendChild(card);
    if (!nudge.seen_at) report(nudge.id, "seen").catch(warn);
  }

  function refresh() {
    return call("GET", "/v1/contacts/" + encodeURIComponent(contact) + "/nudges")
      .then(function (data) {
        addStyle();
        var box = container();
        while (box.firstChild) box.removeChild(box.firstChild);
        (data.nudges || []).slice(0, limit).forEach(function (nudge) { show(nudge, box); });
      })
      .catch(warn);
  }

  window.EngagementNudges = { refresh: refresh };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", refresh);
  else refresh();
})();
