// ISAC analyst console: the only script on the pages besides login.js.
// No inline script anywhere (Content-Security-Policy: script-src 'self').
"use strict";
(function () {
  // Live feed: server-sent events carry rows the server already escaped.
  // The stream closes when the page is hidden (navigated away, put in the
  // back/forward cache): an open stream in a cached page holds one of the
  // browser's six connections to the console, and the seventh page load
  // would wait for one (issue 22). It reopens, from the last row seen, when
  // the page is shown again.
  var feed = document.getElementById("feed");
  if (feed && feed.getAttribute("data-events") && window.EventSource) {
    var rows = document.getElementById("feed-rows");
    var live = document.getElementById("live");
    var url = new URL(feed.getAttribute("data-events"), window.location.href);
    var es = null;
    var add = function (list, html, seq) {
      if (list.querySelector('[data-seq="' + seq + '"]')) { return; }
      list.insertAdjacentHTML("afterbegin", html);
      var first = list.firstElementChild;
      if (first) {
        first.classList.add("fresh");
        // A new revision replaces the row of the one before: one row per item.
        var id = first.getAttribute("data-item");
        list.querySelectorAll("[data-item]").forEach(function (r) {
          if (r !== first && r.getAttribute("data-item") === id) { r.remove(); }
        });
      }
      var empty = document.getElementById("empty");
      if (empty && list === rows) { empty.remove(); }
    };
    var seen = function (seq) {
      var n = parseInt(seq, 10);
      if (n > (parseInt(url.searchParams.get("after"), 10) || 0)) {
        url.searchParams.set("after", String(n));
      }
    };
    var open = function () {
      if (es) { return; }
      es = new EventSource(url.toString());
      es.onopen = function () { live.classList.add("on"); live.textContent = "live"; };
      es.onerror = function () { live.classList.remove("on"); live.textContent = "reconnecting"; };
      es.addEventListener("item", function (e) {
        seen(e.lastEventId);
        add(rows, e.data, e.lastEventId);
      });
      es.addEventListener("bulletin", function (e) {
        seen(e.lastEventId);
        add(document.getElementById("bulletins"), e.data, e.lastEventId);
        var none = document.getElementById("no-bulletins");
        if (none) { none.remove(); }
      });
    };
    var close = function () {
      if (es) { es.close(); es = null; }
      live.classList.remove("on");
      live.textContent = "paused";
    };
    window.addEventListener("pagehide", close);
    window.addEventListener("pageshow", open);
    open();
  }

  // Copy buttons (STIX / CSV on the item page).
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var text = document.getElementById(b.getAttribute("data-copy")).textContent;
      var done = function () { b.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var t = document.createElement("textarea");
        t.value = text; document.body.appendChild(t); t.select();
        try { document.execCommand("copy"); done(); } catch (err) { /* ignore */ }
        t.remove();
      }
    });
  });

  // Lockfile upload: read the chosen file into the textarea, pick its format.
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      var f = input.files && input.files[0];
      if (!f) { return; }
      var select = document.getElementById(input.getAttribute("data-names"));
      for (var i = 0; i < select.options.length; i++) {
        var v = select.options[i].value;
        if (f.name === v || (v === "requirements.txt" && /^requirements.*\.txt$/.test(f.name))) {
          select.selectedIndex = i;
        }
      }
      var reader = new FileReader();
      reader.onload = function () {
        document.getElementById(input.getAttribute("data-fills")).value = reader.result;
        input.setAttribute("data-loaded", f.name);
      };
      reader.readAsText(f);
    });
  });

  // Publish form: audiences only for AMBER and above; live recipient preview.
  var form = document.getElementById("publish-form");
  var audienceToggle = function (f) {
    var tlp = f.querySelector("input[name=tlp]:checked");
    var fs = f.querySelector("fieldset.audience");
    if (fs) { fs.disabled = !tlp || tlp.value === "clear" || tlp.value === "green"; }
  };
  document.querySelectorAll("form.stack").forEach(function (f) {
    audienceToggle(f);
    f.addEventListener("change", function () { audienceToggle(f); });
  });
  if (form) {
    var out = document.getElementById(form.getAttribute("data-preview"));
    var timer = null;
    var refresh = function () {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (v, k) {
        if (k === "tlp" || k === "audience" || k === "audience_other" || k === "anonymous") {
          params.append(k, v);
        }
      });
      fetch("/publish/preview?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (t) { out.textContent = t; });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(refresh, 150); };
    form.addEventListener("change", later);
    form.addEventListener("input", later);
  }
  // --- triage (console-b) ---
  // Keyboard: j / k move to the next / previous row of the item table and
  // focus its link (Enter opens it); / goes to the search box. Keys typed
  // into a field are left alone.
  var rowsOf = function () {
    var body = document.getElementById("feed-rows") || document.querySelector("#results tbody");
    return body ? Array.prototype.slice.call(body.querySelectorAll("tr")) : [];
  };
  var typing = function (el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  };
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) { return; }
    if (e.key === "/") {
      var q = document.getElementById("q");
      e.preventDefault();
      if (q) { q.focus(); q.select(); } else { window.location.href = "/search"; }
      return;
    }
    if (e.key !== "j" && e.key !== "k") { return; }
    var rows = rowsOf();
    if (!rows.length) { return; }
    var at = rows.findIndex(function (r) { return r.classList.contains("current"); });
    var next = e.key === "j" ? at + 1 : at - 1;
    if (at < 0) { next = 0; }
    next = Math.max(0, Math.min(rows.length - 1, next));
    if (at >= 0) { rows[at].classList.remove("current"); }
    var row = rows[next];
    row.classList.add("current");
    var link = row.querySelector("a[href^='/item/']");
    if (link) { link.focus(); }
    row.scrollIntoView({ block: "nearest" });
    e.preventDefault();
  });
  // --- end triage (console-b) ---
})();

// === publishing and reading (console-a) ===
// The publish form shows the fields of the chosen kind only; the others
// are disabled too, so they are not sent.
(function () {
  var form = document.getElementById("publish-form");
  var kind = document.getElementById("kind");
  if (!form || !kind) { return; }
  var show = function () {
    form.querySelectorAll("fieldset.kind-fields").forEach(function (fs) {
      var mine = fs.getAttribute("data-for-kind") === kind.value;
      fs.hidden = !mine;
      fs.disabled = !mine;
    });
  };
  kind.addEventListener("change", show);
  show();
})();
