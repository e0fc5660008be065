// Reads the one-time token from the URL fragment (never sent to a server
// in a request line or Referer), removes it from the address bar and
// history, and posts it; the answer sets the session cookie.
"use strict";
(function () {
  var m = /(?:^#|&)token=([0-9a-f]+)/.exec(window.location.hash);
  if (!m) { return; }
  history.replaceState(null, "", window.location.pathname);
  var form = document.getElementById("login");
  document.getElementById("token").value = m[1];
  form.submit();
})();
