/* Concernline on a phone: offline drafts of the report form. Progressive enhancement only: with
   JavaScript off (or no service worker) the forms post as ordinary HTML forms.

   - A report sent with no signal is kept on this phone as a draft under the page's per-session
     key (#draft-status data-draft-key) and shown as "not sent yet".
   - When the signal returns the draft is posted again with a fresh CSRF token (fetched from the
     form page) and its original client_token, so a draft sent twice is still one case.
   - Signing out, the sign-in page and a page of another session wipe every draft and the
     service worker's cached pages: a draft never outlives its session on a shared phone. */
(function () {
  "use strict";
  var PREFIX = "concernline-draft:";
  var status = document.getElementById("draft-status");
  if (!status || !window.localStorage) return;
  var key = status.getAttribute("data-draft-key");

  function uuid4() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function wipe(keepKey) {
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var k = localStorage.key(i);
      if (k && k.indexOf(PREFIX) === 0 && (!keepKey || k !== PREFIX + keepKey)) localStorage.removeItem(k);
    }
    if (!keepKey && window.caches) {
      caches.keys().then(function (names) { names.forEach(function (n) { caches.delete(n); }); });
    }
  }

  function drafts() {
    try { return JSON.parse(localStorage.getItem(PREFIX + key)) || []; } catch (e) { return []; }
  }

  function store(list) {
    if (list.length) localStorage.setItem(PREFIX + key, JSON.stringify(list));
    else localStorage.removeItem(PREFIX + key);
  }

  function show(text, cls, href) {
    status.textContent = "";
    status.className = "draft-status " + cls;
    var p = document.createElement("p");
    p.textContent = text;
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = href.split("/").filter(Boolean).pop();
      p.appendChild(document.createTextNode(" "));
      p.appendChild(a);
    }
    status.appendChild(p);
    status.hidden = false;
  }

  function fields(form) {
    var out = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrfmiddlewaretoken" && typeof value === "string") out.push([name, value]);
    });
    return out;
  }

  function post(action, pairs, csrf) {
    var body = new URLSearchParams();
    pairs.forEach(function (p) { body.append(p[0], p[1]); });
    body.append("csrfmiddlewaretoken", csrf);
    /* X-Requested-With: the page this is redirected to is read here, not by the person, so it
       leaves "Received" for the page opened next (also said by Sec-Fetch-Dest, where sent). */
    return fetch(action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Requested-With": "fetch" }
    });
  }

  var MY_REPORT = /^\/my-reports\/[^/]+\/$/;

  /* Where the report that was sent can be read (/my-reports/C-…/), or "" if it was not taken.
     A session idle too long still hands its report in, but the page showing it signs out: the
     reply then lands on the sign-in page, whose `next` is that report's page. */
  function receivedAt(response) {
    if (!response.redirected) return "";
    var url = new URL(response.url);
    if (MY_REPORT.test(url.pathname)) return url.pathname;
    var next = url.searchParams.get("next") || "";
    return MY_REPORT.test(next) ? next : "";
  }

  var sending = false;
  function sendDrafts() {
    var list = drafts();
    if (sending || !list.length || !navigator.onLine) return;
    sending = true;
    show(status.getAttribute("data-sending"), "pending");
    var draft = list[0];
    var kind = (draft.fields.filter(function (p) { return p[0] === "kind"; })[0] || [])[1] || "";
    fetch(draft.action + "?kind=" + encodeURIComponent(kind), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var token = doc.querySelector("input[name=csrfmiddlewaretoken]");
        if (!token) throw new Error("signed out");
        return post(draft.action, draft.fields, token.value);
      })
      .then(function (response) {
        sending = false;
        store(drafts().filter(function (d) { return d.id !== draft.id; }));
        var at = receivedAt(response);
        if (at) {
          show(status.getAttribute("data-received"), "sent", at);
          sendDrafts();
        } else {
          /* The server refused it (a field needs correcting): say so rather than retry forever. */
          show(status.getAttribute("data-rejected"), "pending");
        }
      })
      .catch(function () {
        sending = false;
        show(status.getAttribute("data-not-sent"), "pending");
      });
  }

  if (!key) { wipe(null); return; }   /* the sign-in page: no draft of anyone survives here */
  wipe(key);                           /* drafts of an earlier session on this phone */

  var signOut = document.querySelector("form[data-sign-out]");
  if (signOut) signOut.addEventListener("submit", function () { wipe(null); });

  var form = document.querySelector("form[data-report]");
  if (form) {
    var token = form.querySelector("input[name=client_token]");
    /* The page may come from the service worker's cache: never reuse a token already sent. */
    if (token) token.value = uuid4();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var pairs = fields(form);
      var action = form.getAttribute("action");
      function keep() {
        var list = drafts();
        list.push({ id: uuid4(), action: action, fields: pairs, saved: Date.now() });
        store(list);
        if (token) token.value = uuid4();
        form.reset();
        show(status.getAttribute("data-not-sent"), "pending");
        status.scrollIntoView();
      }
      if (!navigator.onLine) { keep(); return; }
      var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
      post(action, pairs, csrf ? csrf.value : "").then(function (response) {
        var at = receivedAt(response);
        if (at === new URL(response.url).pathname) window.location.assign(response.url);
        else if (at) {
          /* Taken, and the idle session signed out: sending it again would only meet the
             sign-in page, which never says the report arrived. Say so here. */
          if (token) token.value = uuid4();
          form.reset();
          show(status.getAttribute("data-received"), "sent", at);
          status.scrollIntoView();
        } else HTMLFormElement.prototype.submit.call(form);  /* let the server show its errors */
      }, keep);
    });
  }

  if (drafts().length) show(status.getAttribute("data-not-sent"), "pending");
  window.addEventListener("online", sendDrafts);
  sendDrafts();

  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(function () {});
})();
